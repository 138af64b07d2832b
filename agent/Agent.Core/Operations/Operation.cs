namespace Backrest.Agent.Core.Operations;

public enum OperationKind
{
    Backup,
    Restore,
}

public enum OperationState
{
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

public sealed record OperationError(AgentErrorKind Kind, string Message, string? Hint, int PgBackRestCode)
{
    public static OperationError From(Exception exception) => exception switch
    {
        AgentException agent => new(agent.Kind, agent.Message, agent.Hint, agent.PgBackRestCode),
        OperationCanceledException => new(AgentErrorKind.Cancelled, "The operation was cancelled (agent shutting down).", "Start it again.", 0),
        _ => new(AgentErrorKind.Internal, exception.Message, "See the agent's log for details.", 0),
    };
}

/// <summary>An immutable view of an operation at one moment; watchers receive these.</summary>
public sealed record OperationSnapshot(
    string Id,
    OperationKind Kind,
    string Description,
    OperationState State,
    DateTimeOffset Started,
    DateTimeOffset? Finished,
    double Percent,
    string Phase,
    IReadOnlyList<string> Warnings,
    OperationError? Error,
    object? Result)
{
    public bool IsFinished => State != OperationState.Running;
}
