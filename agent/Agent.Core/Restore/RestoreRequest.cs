namespace Backrest.Agent.Core.Restore;

/// <summary>A restore as asked for; <see cref="RestoreService"/> validates every field before pgBackRest sees it.</summary>
public sealed record RestoreRequest
{
    /// <summary>latest (default), immediate, time, xid, lsn, name or standby.</summary>
    public string TargetType { get; init; } = "";
    public string Target { get; init; } = "";
    public string Set { get; init; } = "";
    public int Repo { get; init; }
    /// <summary>Empty: in place, into the live data directory (PostgreSQL must be stopped).</summary>
    public string DataDirectory { get; init; } = "";
    /// <summary>Null: delta when the directory already holds a cluster.</summary>
    public bool? Delta { get; init; }
    public string TargetAction { get; init; } = "";
    public bool TargetExclusive { get; init; }
    public string TargetTimeline { get; init; } = "";
    public int Port { get; init; }
    public bool ArchiveModeOn { get; init; }
}

public sealed record RestoreOutcome(string DataDirectory, string BackupLabel, string NextStep) : Operations.OperationResult
{
    public override string? BackupLabel { get; } = BackupLabel;

    /// <summary>The repository the backup set came from (pgBackRest's choice when the request left it to it).</summary>
    public int Repo { get; init; }
}

/// <summary>What the validated request turned into: pgBackRest's arguments and what the caller is told.</summary>
public sealed record RestorePlan(
    IReadOnlyList<string> Arguments,
    string DataDirectory,
    bool InPlace,
    string Description,
    string? ExpectedSet,
    int? ExpectedRepo,
    string NextStep);
