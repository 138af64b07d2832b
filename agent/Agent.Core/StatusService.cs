using Backrest.Agent.Core.Archive;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.Status;
using Backrest.Agent.Core.Postgres;

namespace Backrest.Agent.Core;

public sealed record AgentStatus(
    string Stanza,
    string DataDirectory,
    PostgresState Postgres,
    StatusSnapshot Repositories,
    AgentRuntime Runtime,
    OperationSnapshot? Running,
    ArchiveStats Archive,
    ReadyBacklog Ready,
    ArchiverStats? Archiver,
    WalVolumeOutlook WalVolume,
    DateTimeOffset Now)
{
    /// <summary>Each repository's retention as configured; an unconfigured one is also a start-up warning.</summary>
    public IReadOnlyList<Retention.RetentionPolicy> Retention { get; init; } = [];

    /// <summary>The last verify report of each repository verified (kept in the operation history across restarts).</summary>
    public IReadOnlyDictionary<int, Verify.VerifyReport> Verify { get; init; } = new Dictionary<int, Verify.VerifyReport>();

    /// <summary>Where the last restored cluster ended recovery, once one promoted since the agent started.</summary>
    public Restore.RecoveryEnd? LastRecoveryEnd { get; init; }

    /// <summary>When <see cref="Postgres"/> and <see cref="Archiver"/> were read (shared with other callers, at most a second old).</summary>
    public DateTimeOffset? PostgresReadAt { get; init; }

    /// <summary>The backup lease of each repository that has one: held by this agent, or as last read from the repository.</summary>
    public IReadOnlyList<Cluster.ObservedLease> BackupLeases { get; init; } = [];
}

/// <summary>
/// One read of everything an operator asks first: is PostgreSQL up, are the repositories reachable and the stanza
/// healthy, is WAL flowing. Repository facts come from the status cache, so a dead repository never slows the answer.
/// </summary>
public sealed class StatusService(
    AgentOptions options,
    AgentRuntime runtime,
    PostgresReadingCache postgres,
    StatusCache cache,
    OperationRegistry operations,
    ArchiveService archive,
    WalVolumeForecast walVolume,
    Verify.VerifyService verify,
    Restore.RecoveryReachedWatcher recoveryReached,
    Cluster.BackupLease lease,
    TimeProvider time)
{
    /// <param name="refresh">Probe and read every repository first (each bounded by its deadline).</param>
    public async Task<AgentStatus> GetAsync(bool refresh, CancellationToken cancellationToken)
    {
        var reading = postgres.GetAsync(cancellationToken);
        if (refresh)
        {
            await Task.WhenAll(cache.RefreshAsync(cancellationToken), lease.ReadAllAsync(cancellationToken)).ConfigureAwait(false);
        }

        var postgresNow = await reading.ConfigureAwait(false);
        return new AgentStatus(
            options.Stanza,
            options.Postgres.DataDirectory,
            postgresNow.State,
            cache.Snapshot(),
            runtime,
            operations.Running,
            archive.GetStats(),
            ReadyBacklog.Read(options.Postgres.DataDirectory, time.GetUtcNow()),
            postgresNow.Archiver,
            walVolume.Current(),
            time.GetUtcNow())
        {
            Retention = Retention.RetentionPolicy.All(options),
            Verify = verify.Last,
            LastRecoveryEnd = recoveryReached.Last,
            PostgresReadAt = postgresNow.ReadAt,
            BackupLeases = lease.Current(),
        };
    }
}
