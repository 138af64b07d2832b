using System.CommandLine;

namespace Backrest.Agent.Cli;

/// <summary>Wraps every command's action: builds its context and turns failures into a message and an exit code.</summary>
internal static class CommandRunner
{
    public static Func<ParseResult, CancellationToken, Task<int>> Action(
        GlobalOptions globals,
        Func<CommandContext, CancellationToken, Task<int>> run) =>
        async (parseResult, cancellationToken) =>
        {
            var output = Output.ForConsole();
            try
            {
                var timeout = TimeSpan.FromSeconds(parseResult.GetValue(globals.Timeout));
                var (agents, cluster) = await globals.GetAgentsAsync(parseResult, timeout, cancellationToken);
                var time = TimeProvider.System;
                using var context = new CommandContext(
                    parseResult,
                    output,
                    new AgentConnections(agents, timeout, time, globals.GetSecurity(parseResult)) { Cluster = cluster },
                    parseResult.GetValue(globals.Json),
                    time);
                return await run(context, cancellationToken);
            }
            catch (CliException ex)
            {
                output.Fail(ex.Message);
                return ex.ExitCode;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                output.Fail("interrupted");
                return ExitCodes.Interrupted;
            }
        };
}
