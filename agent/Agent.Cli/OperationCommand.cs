using System.CommandLine;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.Cli;

/// <summary><c>operation ID [--wait]</c>: GetOperation, or WatchOperation until the operation ends.</summary>
internal static class OperationCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var id = new Argument<string>("id") { Description = "Operation id, as printed by backup or restore." };
        var wait = CommonOptions.Wait("operation");
        var command = new Command(
            "operation",
            "Show a backup or restore operation. With several --agent, the agent that knows the id answers.")
        {
            id,
            wait,
        };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var (agent, operation) = await FindAsync(context, context.ParseResult.GetRequiredValue(id), cancellationToken);
            if (context.ParseResult.GetValue(wait))
            {
                return await new OperationWatcher(context).WatchAsync(agent, operation, cancellationToken);
            }

            if (context.Json)
            {
                context.Output.WriteJson(operation);
            }
            else
            {
                OperationReport.WriteDetails(context.Output.Out, agent, operation);
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    /// <summary>Ids are per agent; asking every agent lets the same --agent list that started a backup follow it.</summary>
    private static async Task<(AgentAddress Agent, Operation Operation)> FindAsync(
        CommandContext context,
        string id,
        CancellationToken cancellationToken)
    {
        var request = new GetOperationRequest { Id = id };
        if (context.Agents.Agents.Count == 1)
        {
            var agent = context.Agents.Agents[0];
            return (agent, await context.Agents.CallAsync(agent, (client, options) => client.GetOperationAsync(request, options), cancellationToken));
        }

        var replies = await context.Agents.CallEachAsync(
            (client, options) => client.GetOperationAsync(request, options),
            cancellationToken);
        var found = replies.Where(r => r.Reply is not null).ToList();
        if (found.Count == 1)
        {
            return (found[0].Agent, found[0].Reply!);
        }

        if (found.Count > 1)
        {
            throw new CliException(
                $"operation {id} exists on several agents ({string.Join(", ", found.Select(r => r.Agent))}); pass one with --agent");
        }

        // Not found anywhere: an agent that failed otherwise may be the one that knows it, so show those errors.
        var failures = replies.Where(r => r.Error is { StatusCode: not StatusCode.NotFound }).ToList();
        foreach (var failure in failures)
        {
            context.Output.Fail(failure.Error!.Message);
        }

        throw new CliException(
            failures.Count == 0
                ? $"no agent knows operation {id} (asked {string.Join(", ", context.Agents.Agents)})"
                : $"operation {id} not found on the agents that answered");
    }
}
