using Backrest.Agent.Core;
using Backrest.Agent.Core.Archive;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.Postgres;
using Backrest.Agent.Core.Restore;
using Prometheus;

namespace Backrest.Agent.Server.Metrics;

/// <summary>
/// The agent's Prometheus metrics, in a registry of its own (no static state). Counters are fed as
/// events happen; gauges are read at scrape time from the agent's memory, the archive_status directory
/// and pg_stat_archiver — cheap reads; the recovery window (a pgbackrest info call) is cached.
/// Labels are only stanza and repo: no backup labels or WAL names, so the series count stays fixed.
/// </summary>
internal sealed class AgentMetrics
{
    private static readonly TimeSpan WindowRefresh = TimeSpan.FromSeconds(60);

    private readonly AgentOptions _options;
    private readonly ArchiveService _archive;
    private readonly PostgresClient _postgres;
    private readonly RestoreService _restores;
    private readonly OperationRegistry _operations;
    private readonly TimeProvider _time;
    private readonly Histogram _pushDuration;
    private readonly Counter _pushed;
    private readonly Counter _pushFailures;
    private readonly Counter _pushBytes;
    private readonly Counter _dropped;
    private readonly Gauge _lastArchived;
    private readonly Gauge _readyFiles;
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
    private DateTimeOffset _windowReadAt = DateTimeOffset.MinValue;

    public AgentMetrics(AgentOptions options, ArchiveService archive, PostgresClient postgres, RestoreService restores,
        OperationRegistry operations, TimeProvider time)
    {
        _options = options;
        _archive = archive;
        _postgres = postgres;
        _restores = restores;
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

        Registry.AddBeforeCollectCallback(CollectAsync);
    }

    public CollectorRegistry Registry { get; }

    /// <summary>Called by the WalArchive service for each push it served.</summary>
    public void ObservePush(TimeSpan elapsed, bool succeeded) =>
        _pushDuration.WithLabels(_options.Stanza, succeeded ? "ok" : "error").Observe(elapsed.TotalSeconds);

    private async Task CollectAsync(CancellationToken cancellationToken)
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

        var ready = ReadyBacklog.Read(_options.Postgres.DataDirectory, _time.GetUtcNow());
        _readyFiles.WithLabels(stanza).Set(ready.Count);
        _readyBytes.WithLabels(stanza).Set(ready.Bytes);
        _oldestReady.WithLabels(stanza).Set(ready.OldestAge.TotalSeconds);

        if (await _postgres.GetArchiverStatsAsync(cancellationToken) is { } archiver)
        {
            _pgArchived.WithLabels(stanza).Set(archiver.ArchivedCount);
            _pgFailed.WithLabels(stanza).Set(archiver.FailedCount);
            SetTimestamp(_pgLastArchived.WithLabels(stanza), archiver.LastArchivedTime);
            SetTimestamp(_pgLastFailed.WithLabels(stanza), archiver.LastFailedTime);
        }

        foreach (var ((kind, repo, decision), count) in _operations.Decisions.Snapshot())
        {
            _decisions.WithLabels(stanza, repo.ToString(), kind, decision).IncTo(count);
        }

        var running = _operations.Running;
        foreach (var kind in Enum.GetValues<OperationKind>())
        {
            _running.WithLabels(stanza, kind.ToString().ToLowerInvariant()).Set(running?.Kind == kind ? 1 : 0);
        }

        if (_time.GetUtcNow() - _windowReadAt > WindowRefresh)
        {
            try
            {
                foreach (var window in await _restores.GetWindowsAsync(0, cancellationToken))
                {
                    SetTimestamp(_windowEarliest.WithLabels(stanza, window.Repo.ToString()), window.EarliestTime);
                    SetTimestamp(_windowLatest.WithLabels(stanza, window.Repo.ToString()), window.LatestTime);
                }

                _windowReadAt = _time.GetUtcNow();
            }
            catch (AgentException)
            {
                // The stanza may not exist yet; the window gauges stay as they were.
            }
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
