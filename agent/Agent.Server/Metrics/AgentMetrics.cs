using Backrest.Agent.Core;
using Backrest.Agent.Core.Archive;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Continuity;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Repositories;
using Backrest.Agent.Core.Restore;
using Backrest.Agent.Core.Status;
using Prometheus;

namespace Backrest.Agent.Server.Metrics;

/// <summary>
/// The agent's Prometheus metrics, in a registry of its own (no static state). Counters are fed as
/// events happen; gauges are set at scrape time from values already in memory: the archive counters, the last
/// <see cref="WalArchiveSample"/> (archive_status directory, pg_stat_archiver, pg_wal volume: sampled in the background
/// every Agent:Status:SampleIntervalSeconds) and the status cache (reachability, recovery window). A scrape does no I/O,
/// never starts pgBackRest, and a dead repository never slows it. An unknown value is an absent series, never 0.
/// Labels are only stanza and repo: no backup labels or WAL names, so the series count stays fixed.
/// </summary>
internal sealed class AgentMetrics
{
    private readonly AgentOptions _options;
    private readonly ArchiveService _archive;
    private readonly WalArchiveSampler _sampler;
    private readonly StatusCache _cache;
    private readonly OperationRegistry _operations;
    private readonly TimeProvider _time;
    private readonly Histogram _pushDuration;
    private readonly Counter _pushed;
    private readonly Counter _pushFailures;
    private readonly Counter _pushBytes;
    private readonly Counter _dropped;
    private readonly Gauge _lastArchived;
    private readonly Gauge _sampledAt;
    private readonly Gauge _readyFiles;
    private readonly Gauge _doneFiles;
    private readonly Gauge _asyncErrors;
    private readonly Gauge _readyBytes;
    private readonly Gauge _oldestReady;
    private readonly Gauge _pgArchived;
    private readonly Gauge _pgFailed;
    private readonly Gauge _pgLastArchived;
    private readonly Gauge _pgLastFailed;
    private readonly Gauge _windowEarliest;
    private readonly Gauge _windowLatest;
    private readonly Gauge _running;
    private readonly Counter _decisions;
    private readonly Gauge _repoUp;
    private readonly Gauge _probeDuration;
    private readonly Gauge _probeError;
    private readonly Gauge _probeTime;
    private readonly Gauge _repoFree;
    private readonly Gauge _infoTime;
    private readonly Gauge _cacheAge;
    private readonly Gauge _blocking;
    private readonly Gauge _walFree;
    private readonly Gauge _walFull;
    private readonly Gauge _archiveMaxLsn;
    private readonly Gauge _databaseCreated;

    public AgentMetrics(AgentOptions options, ArchiveService archive, WalArchiveSampler sampler, StatusCache cache,
        OperationRegistry operations, TimeProvider time)
    {
        _options = options;
        _archive = archive;
        _sampler = sampler;
        _cache = cache;
        _operations = operations;
        _time = time;
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        string[] stanza = ["stanza"];
        string[] repo = ["stanza", "repo"];

        _pushDuration = factory.CreateHistogram("pgbackrest_archive_push_duration_seconds",
            "Time from PostgreSQL's archive_command call reaching the agent to the reply, by result.",
            new HistogramConfiguration
            {
                LabelNames = ["stanza", "result"],
                Buckets = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
            });
        _pushed = factory.CreateCounter("pgbackrest_archive_pushed_total", "WAL files stored in the repository.", repo);
        _pushFailures = factory.CreateCounter("pgbackrest_archive_push_failures_total", "WAL pushes that failed on the repository (PostgreSQL keeps and retries them).", repo);
        _pushBytes = factory.CreateCounter("pgbackrest_archive_pushed_bytes_total", "Bytes of WAL pushed to the repository (uncompressed).", repo);
        _dropped = factory.CreateCounter("pgbackrest_archive_push_dropped_segments_total",
            "WAL segments pgBackRest dropped because archive-push-queue-max was exceeded: point-in-time recovery is broken until the next backup.", stanza);
        _lastArchived = factory.CreateGauge("pgbackrest_archive_last_success_timestamp_seconds", "When the agent last archived a WAL file.", stanza);
        _sampledAt = factory.CreateGauge("pgbackrest_wal_archive_sampled_timestamp_seconds",
            "When the backlog, pg_stat_archiver, async error and pg_wal volume figures were sampled (every Agent:Status:SampleIntervalSeconds).", stanza);
        _doneFiles = factory.CreateGauge("pgbackrest_wal_archive_done_files",
            "WAL files archived but not yet recycled by a checkpoint (.done in pg_wal/archive_status).", stanza);
        _asyncErrors = factory.CreateGauge("pgbackrest_archive_async_error_files",
            "Error files pgBackRest's async archive-push left in its spool (<spool>/archive/<stanza>/out/*.error); absent when async archiving is off.", stanza);
        _readyFiles = factory.CreateGauge("pgbackrest_wal_archive_ready_files", "WAL files waiting to be archived (.ready in pg_wal/archive_status).", stanza);
        _readyBytes = factory.CreateGauge("pgbackrest_wal_archive_ready_bytes", "Bytes of WAL waiting to be archived.", stanza);
        _oldestReady = factory.CreateGauge("pgbackrest_wal_archive_oldest_ready_age_seconds", "Age of the oldest WAL file waiting to be archived: the archiving delay.", stanza);
        _pgArchived = factory.CreateGauge("pgbackrest_pg_archiver_archived_total", "pg_stat_archiver.archived_count.", stanza);
        _pgFailed = factory.CreateGauge("pgbackrest_pg_archiver_failed_total", "pg_stat_archiver.failed_count (an archive_command killed by a signal is not counted).", stanza);
        _pgLastArchived = factory.CreateGauge("pgbackrest_pg_archiver_last_archived_timestamp_seconds", "pg_stat_archiver.last_archived_time.", stanza);
        _pgLastFailed = factory.CreateGauge("pgbackrest_pg_archiver_last_failed_timestamp_seconds", "pg_stat_archiver.last_failed_time.", stanza);
        _windowEarliest = factory.CreateGauge("pgbackrest_recovery_window_earliest_timestamp_seconds", "The oldest point a restore can reach: the end of the oldest backup.", repo);
        _windowLatest = factory.CreateGauge("pgbackrest_recovery_window_latest_timestamp_seconds", "When the repository's newest WAL was archived, when known.", repo);
        _running = factory.CreateGauge("pgbackrest_operation_running", "1 while a backup or restore runs.", ["stanza", "kind"]);
        _decisions = factory.CreateCounter("pgbackrest_backup_decisions_total",
            "What the agent decided about each backup asked for or scheduled (result: started, queued, already_queued, " +
            "dropped_covered, refused_busy, skipped_not_primary, caught_up); kind is the backup type.", ["stanza", "repo", "kind", "result"]);

        _repoUp = factory.CreateGauge("pgbackrest_repo_up",
            "1 when the repository's last reachability probe (list one object; posix: writable directory) succeeded, else 0.", repo);
        _probeDuration = factory.CreateGauge("pgbackrest_repo_probe_duration_seconds", "How long the last reachability probe took.", repo);
        _probeError = factory.CreateGauge("pgbackrest_repo_probe_error_info",
            "1 for the error class of the last failed probe (class: dns, connect, tls, auth, not-found, permission, timeout, other); absent while reachable.",
            ["stanza", "repo", "class"]);
        _probeTime = factory.CreateGauge("pgbackrest_repo_probe_timestamp_seconds", "When the repository was last probed.", repo);
        _repoFree = factory.CreateGauge("pgbackrest_repo_free_bytes", "Free bytes on a posix repository's volume.", repo);
        _infoTime = factory.CreateGauge("pgbackrest_info_last_success_timestamp_seconds", "When pgbackrest info of the repository last succeeded.", repo);
        _cacheAge = factory.CreateGauge("pgbackrest_status_cache_age_seconds",
            "Age of the oldest repository info the agent answers from (status, backups, windows, these metrics); absent until every repository was read once.", stanza);

        _blocking = factory.CreateGauge("pgbackrest_archive_repo_blocking",
            "1 while the repository's latest WAL push failed: PostgreSQL keeps every segment for all repositories until it succeeds.", repo);
        _walFree = factory.CreateGauge("pgbackrest_wal_volume_free_bytes", "Free bytes on the pg_wal volume.", stanza);
        _walFull = factory.CreateGauge("pgbackrest_wal_volume_full_in_seconds",
            "Time until the pg_wal volume is full at the archive backlog's growth over the last 15 minutes; absent while it is not growing.", stanza);

        _archiveMaxLsn = factory.CreateGauge("pgbackrest_archive_max_segment_lsn_bytes",
            "Where the newest WAL segment in the repository's archive (current database) starts, as a byte position like " +
            "pg_current_wal_lsn() - pg_lsn '0/0'; absent until known.", repo);
        _databaseCreated = factory.CreateGauge("pgbackrest_stanza_database_created_timestamp_seconds",
            "When the repository's current database was created (initdb, read from its system identifier): a cluster younger " +
            "than its retention cannot have that recovery window yet.", repo);

        Registry.AddBeforeCollectCallback(Collect);
    }

    public CollectorRegistry Registry { get; }

    /// <summary>Called by the WalArchive service for each push it served.</summary>
    public void ObservePush(TimeSpan elapsed, bool succeeded) =>
        _pushDuration.WithLabels(_options.Stanza, succeeded ? "ok" : "error").Observe(elapsed.TotalSeconds);

    private void Collect()
    {
        var stanza = _options.Stanza;
        var stats = _archive.GetStats();
        foreach (var r in stats.Repositories)
        {
            var key = r.Repo.ToString();
            _pushed.WithLabels(stanza, key).IncTo(r.Pushed);
            _pushFailures.WithLabels(stanza, key).IncTo(r.Failed);
            _pushBytes.WithLabels(stanza, key).IncTo(r.Bytes);
        }

        _dropped.WithLabels(stanza).IncTo(stats.DroppedSegments);
        SetTimestamp(_lastArchived.WithLabels(stanza), stats.LastArchivedTime);

        var sample = _sampler.Last;
        var ready = sample?.Ready;
        SetOrRemove(_sampledAt, Seconds(sample?.SampledAt), stanza);
        SetOrRemove(_readyFiles, ready?.Count, stanza);
        SetOrRemove(_readyBytes, ready?.Bytes, stanza);
        SetOrRemove(_doneFiles, ready?.DoneFiles, stanza);
        // The backlog's age grows between samples as it would have been seen at scrape time.
        SetOrRemove(_oldestReady, ready is null ? null : ready.Count == 0 ? 0 : (ready.OldestAge + (_time.GetUtcNow() - sample!.SampledAt)).TotalSeconds, stanza);
        SetOrRemove(_asyncErrors, sample?.AsyncErrorFiles, stanza);

        var archiver = sample?.Archiver;
        // While PostgreSQL does not answer the sample has no archiver figures: absent, not the last ones seen.
        SetOrRemove(_pgArchived, archiver?.ArchivedCount, stanza);
        SetOrRemove(_pgFailed, archiver?.FailedCount, stanza);
        SetOrRemove(_pgLastArchived, Seconds(archiver?.LastArchivedTime), stanza);
        SetOrRemove(_pgLastFailed, Seconds(archiver?.LastFailedTime), stanza);

        foreach (var ((kind, repo, decision), count) in _operations.Decisions.Snapshot())
        {
            _decisions.WithLabels(stanza, repo.ToString(), kind, decision).IncTo(count);
        }

        var running = _operations.Running;
        foreach (var kind in Enum.GetValues<OperationKind>())
        {
            _running.WithLabels(stanza, kind.ToString().ToLowerInvariant()).Set(running?.Kind == kind ? 1 : 0);
        }

        CollectRepositories(stanza, stats, sample);
    }

    private void CollectRepositories(string stanza, ArchiveStats stats, WalArchiveSample? sample)
    {
        var archiver = sample?.Archiver;
        var now = _time.GetUtcNow();
        var snapshot = _cache.Snapshot();
        foreach (var r in snapshot.Repositories)
        {
            var key = r.Repo.ToString();
            // The catalog's part was computed when the info was read: a scrape does not walk the backups.
            var window = RecoveryWindow.Current(r.Read.Window, r.Repo, stats, archiver, r.Continuity);
            SetOrRemove(_windowEarliest, Seconds(window.EarliestTime), stanza, key);
            SetOrRemove(_windowLatest, Seconds(window.LatestTime), stanza, key);
            SetOrRemove(_archiveMaxLsn, LsnBytes(window.NewestArchivedWal, sample?.WalSegmentSize), stanza, key);
            SetOrRemove(_databaseCreated, CreatedAt(r.Read.Info, r.Repo), stanza, key);
            SetOrRemove(_infoTime, Seconds(r.Read.ReadAt), stanza, key);
            var probe = r.Probe;
            SetOrRemove(_repoUp, probe is null ? null : probe.Reachable ? 1 : 0, stanza, key);
            SetOrRemove(_probeDuration, probe?.Latency.TotalSeconds, stanza, key);
            SetOrRemove(_probeTime, Seconds(probe?.CheckedAt), stanza, key);
            SetOrRemove(_repoFree, probe?.FreeBytes, stanza, key);
            foreach (var errorClass in Enum.GetValues<ProbeErrorClass>())
            {
                SetOrRemove(_probeError, probe?.ErrorClass == errorClass ? 1 : null, stanza, key, ProbeResult.Name(errorClass));
            }
        }

        SetOrRemove(_cacheAge, snapshot.InfoReadAt is { } readAt ? (now - readAt).TotalSeconds : null, stanza);
        var blocking = stats.BlockingRepos;
        foreach (var r in stats.Repositories)
        {
            _blocking.WithLabels(stanza, r.Repo.ToString()).Set(blocking.Contains(r.Repo) ? 1 : 0);
        }

        var outlook = sample?.WalVolume;
        SetOrRemove(_walFree, outlook?.FreeBytes, stanza);
        SetOrRemove(_walFull, outlook?.HoursUntilFull * 3600, stanza);
    }

    /// <summary>A segment name's start as a byte position: the log id is the high 32 bits, the segment within it the rest.</summary>
    private static double? LsnBytes(string? wal, long? segmentSize) =>
        wal is not null && segmentSize is { } size && WalSegment.TryParse(wal, size, out var segment) ? (double)(segment.Number * (ulong)size) : null;

    /// <summary>
    /// PostgreSQL's system identifier is initdb's time: seconds in the high 32 bits (then microseconds and the pid), so the
    /// current database's identifier says how old the cluster is, whatever the repository still holds.
    /// </summary>
    private static double? CreatedAt(StanzaInfo? info, int repo) =>
        info?.Databases.Where(d => d.RepoKey == repo).MaxBy(d => d.Id) is { } current ? current.SystemId >> 32 : null;

    private static double? Seconds(DateTimeOffset? value) => value?.ToUnixTimeMilliseconds() / 1000.0;

    /// <summary>Unknown is absent: the series is removed rather than left at a stale value or set to 0.</summary>
    internal static void SetOrRemove(Gauge gauge, double? value, params string[] labels)
    {
        if (value is { } v)
        {
            gauge.WithLabels(labels).Set(v);
        }
        else
        {
            gauge.RemoveLabelled(labels);
        }
    }

    private static void SetTimestamp(Gauge.Child gauge, DateTimeOffset? value)
    {
        if (value is { } v)
        {
            gauge.Set(v.ToUnixTimeMilliseconds() / 1000.0);
        }
    }
}
