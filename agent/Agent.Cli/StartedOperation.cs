using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary>What backup and restore do with the Operation their Start call returns.</summary>
internal static class StartedOperation
{
    public static async Task<int> ReportAsync(
        CommandContext context,
        AgentAddress agent,
        Operation operation,
        bool wait,
        CancellationToken cancellationToken,
        bool cancelOnExit = false)
    {
        if (wait)
        {
            return await new OperationWatcher(context).WatchAsync(agent, operation, cancellationToken, cancelOnExit);
        }

        if (context.Json)
        {
            context.Output.WriteJson(operation);
            return operation.State is OperationState.Failed or OperationState.Cancelled ? ExitCodes.Failure : ExitCodes.Success;
        }

        // The agent may refuse at once (a failed precondition found before any work): say so even without --wait.
        if (OperationReport.IsFinal(operation))
        {
            return OperationReport.WriteSummary(context.Output, operation);
        }

        context.Output.Out.WriteLine((operation.State == OperationState.Queued ? "queued " : "started ") + OperationReport.Header(agent, operation));
        context.Output.Out.WriteLine("follow it with: " + OperationReport.FollowHint(agent, operation));
        return ExitCodes.Success;
    }
}
