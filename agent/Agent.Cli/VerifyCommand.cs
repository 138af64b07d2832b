using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>verify [--repo N] [--queue] [--wait]</c>: pgBackRest's verify as an operation on the primary's agent.</summary>
internal static class VerifyCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var repo = CommonOptions.Repo("Repository to verify (as numbered in status); 0 (default): every repository, one after another.");
        var wait = CommonOptions.Wait("verify");
        var queue = new Option<bool>("--queue")
        {
            Description = "If another operation runs, wait in the agent's queue instead of being refused.",
        };
        var command = new Command(
            "verify",
            "Read back every backup file and archived WAL segment and check them against their checksums (pgBackRest verify). " +
            "With --wait, exit 1 when anything is damaged.")
        {
            repo,
            wait,
            queue,
        };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var request = new VerifyRequest { Repo = context.ParseResult.GetValue(repo), Queue = context.ParseResult.GetValue(queue) };
            var agent = await context.Agents.FindPrimaryAsync(context.Output.Fail, cancellationToken);
            var operation = await context.Agents.CallAsync(agent, (client, options) => client.VerifyAsync(request, options), cancellationToken);
            return await StartedOperation.ReportAsync(context, agent, operation, context.ParseResult.GetValue(wait), cancellationToken);
        }));
        return command;
    }
}
