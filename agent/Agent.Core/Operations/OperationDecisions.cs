using System.Collections.Concurrent;

namespace Backrest.Agent.Core.Operations;

/// <summary>
/// Counts what the agent decided about each backup it was asked for or scheduled: started, queued behind another
/// operation, dropped because a covering backup finished first, skipped on a standby, caught up after a restart.
/// The metrics endpoint reads these (labels kind = backup type, repo, result = the decision).
/// </summary>
public sealed class OperationDecisions
{
    public const string Started = "started";
    public const string Queued = "queued";
    public const string AlreadyQueued = "already_queued";
    public const string Dropped = "dropped_covered";
    public const string Refused = "refused_busy";
    public const string SkippedStandby = "skipped_not_primary";
    public const string CaughtUp = "caught_up";

    private readonly ConcurrentDictionary<(string Kind, int Repo, string Decision), long> _counts = new();

    public void Count(string kind, int repo, string decision) =>
        _counts.AddOrUpdate((kind, repo, decision), 1, (_, n) => n + 1);

    public IReadOnlyDictionary<(string Kind, int Repo, string Decision), long> Snapshot() => new Dictionary<(string, int, string), long>(_counts);
}
