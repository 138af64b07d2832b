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
}

/// <summary>
/// One read of everything an operator asks first: is PostgreSQL up, are the repositories reachable and the stanza
/// healthy, is WAL flowing. Repository facts come from the status cache, so a dead repository never slows the answer.
/// </summary>
public sealed class StatusService(
    AgentOptions options,
    AgentRuntime runtime,
    PostgresClient postgres,
    StatusCache cache,
    OperationRegistry operations,
    ArchiveService archive,
    WalVolumeForecast walVolume,
    Verify.VerifyService verify,
    Restore.RecoveryReachedWatcher recoveryReached,
    TimeProvider time)
{
    /// <param name="refresh">Probe and read every repository first (each bounded by its deadline).</param>
    public async Task<AgentStatus> GetAsync(bool refresh, CancellationToken cancellationToken)
    {
        var stateTask = postgres.GetStateAsync(cancellationToken);
        var archiverTask = postgres.GetArchiverStatsAsync(cancellationToken);
        if (refresh)
        {
            await cache.RefreshAsync(cancellationToken).ConfigureAwait(false);
        }

        return new AgentStatus(
            options.Stanza,
            options.Postgres.DataDirectory,
            await stateTask.ConfigureAwait(false),
            cache.Snapshot(),
            runtime,
            operations.Running,
            archive.GetStats(),
            ReadyBacklog.Read(options.Postgres.DataDirectory, time.GetUtcNow()),
            await archiverTask.ConfigureAwait(false),
            walVolume.Current(),
            time.GetUtcNow())
        {
            Retention = Retention.RetentionPolicy.All(options),
            Verify = verify.Last,
            LastRecoveryEnd = recoveryReached.Last,
        };
    }
}
