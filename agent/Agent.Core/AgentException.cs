namespace Backrest.Agent.Core;

/// <summary>The outcome classes a caller can act on; the gRPC layer maps each to one status code.</summary>
public enum AgentErrorKind
{
    Unknown,
    InvalidArgument,
    FailedPrecondition,
    NotFound,
    AlreadyExists,
    Aborted,
    Unavailable,
    DeadlineExceeded,
    PermissionDenied,
    Cancelled,
    Unimplemented,
    DataLoss,
    Internal,
}

/// <summary>
/// A failure the agent understands: the kind, a message a person can act on, and (when it came
/// from pgBackRest) pgBackRest's exit code and hint.
/// </summary>
public class AgentException(AgentErrorKind kind, string message, string? hint = null, int pgBackRestCode = 0, Exception? inner = null)
    : Exception(message, inner)
{
    public AgentErrorKind Kind { get; } = kind;

    /// <summary>What to do next.</summary>
    public string? Hint { get; } = hint;

    /// <summary>pgBackRest's exit code, 0 when the error did not come from pgBackRest.</summary>
    public int PgBackRestCode { get; } = pgBackRestCode;

    public static AgentException InvalidArgument(string message) => new(AgentErrorKind.InvalidArgument, message);

    public static AgentException FailedPrecondition(string message, string? hint = null) =>
        new(AgentErrorKind.FailedPrecondition, message, hint);

    public static AgentException NotFound(string message, string? hint = null) => new(AgentErrorKind.NotFound, message, hint);
}
