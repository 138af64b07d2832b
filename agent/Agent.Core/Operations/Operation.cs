namespace Backrest.Agent.Core.Operations;

public enum OperationKind
{
    Backup,
    Restore,
    Expire,
    Delete,
    Verify,
    Drill,
}

public enum OperationState
{
    Running,
    Succeeded,
    Failed,
    Cancelled,

    /// <summary>Waiting for the exclusive lane (a scheduled backup, or a manual one asked to queue).</summary>
    Queued,
}

/// <summary>Who asked: a person or program through the API, or one of the agent's schedules.</summary>
public enum OperationTrigger
{
    Manual,
    Schedule,
}

/// <summary>What a finished operation produced; each kind has its own record (backup, restore, expire, delete).</summary>
public abstract record OperationResult
{
    /// <summary>The backup the operation took, restored from or deleted, when there is one (kept in the history).</summary>
    public abstract string? BackupLabel { get; }
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
    OperationResult? Result)
{
    public bool IsFinished => State is not (OperationState.Running or OperationState.Queued);

    public OperationTrigger Trigger { get; init; } = OperationTrigger.Manual;

    /// <summary>The backup label of the result; after a restart the history keeps only this of the result.</summary>
    public string? BackupLabel { get; init; }
}
