using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>cancel ID</c>: CancelOperation: a queued operation is dropped, a running one stopped (pgBackRest gets SIGTERM).</summary>
internal static class CancelCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var id = new Argument<string>("id") { Description = "Operation id, as printed by backup, restore or history." };
        var command = new Command("cancel", "Cancel a queued operation, or stop a running one (pgBackRest gets SIGTERM, then is killed).")
        {
            id,
        };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var request = new CancelOperationRequest { Id = context.ParseResult.GetRequiredValue(id) };
            var agent = context.Agents.Agents[0];
            var operation = await context.Agents.CallAsync(agent, (client, options) => client.CancelOperationAsync(request, options), cancellationToken);
            if (context.Json)
            {
                context.Output.WriteJson(operation);
                return ExitCodes.Success;
            }

            context.Output.Out.WriteLine(OperationReport.IsFinal(operation)
                ? $"cancelled {OperationReport.Header(agent, operation)}"
                : $"stopping {OperationReport.Header(agent, operation)}; follow it with: {OperationReport.FollowHint(agent, operation)}");
            return ExitCodes.Success;
        }));
        return command;
    }
}
