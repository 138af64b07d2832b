using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Status;
using Prometheus;

namespace Backrest.Agent.Server.Metrics;

/// <summary>
/// What the repositories hold, from the status cache alone: stanza and repository status codes, and per repository and
/// backup type the count and the newest backup (completion time, duration, sizes), plus the running operation's progress.
/// The per-type figures were reduced when the cache stored the info read (<see cref="BackupSummary"/>), so a scrape sets
/// about forty gauges whatever the catalog's size. Names follow pgbackrest_exporter's pgbackrest_backup_last_* where they
/// overlap; values pgBackRest does not report (repository size of a block-incremental backup, progress bytes before
/// 2.48, annotations before 2.41) are absent, never 0.
/// </summary>
internal sealed class BackupCatalogMetrics
{
    private static readonly string[] StanzaRepoType = ["stanza", "repo", "type"];

    /// <summary>pgBackRest lists backup annotations from 2.41: before, none listed is not known to be none.</summary>
    private static readonly Version AnnotationsVersion = new(2, 41);

    private readonly AgentOptions _options;
    private readonly StatusCache _cache;
    private readonly OperationRegistry _operations;
    private readonly bool _listsAnnotations;
    private readonly Gauge _stanzaStatus;
    private readonly Gauge _lockHeld;
    private readonly Gauge _repoStatus;
    private readonly Gauge _infoFailing;
    private readonly Gauge _count;
    private readonly Gauge _completion;
    private readonly Gauge _duration;
    private readonly Gauge _databaseSize;
    private readonly Gauge _databaseDelta;
    private readonly Gauge _repoSize;
    private readonly Gauge _repoDelta;
    private readonly Gauge _repoSizeMap;
    private readonly Gauge _repoDeltaMap;
    private readonly Gauge _error;
    private readonly Gauge _references;
    private readonly Gauge _annotations;
    private readonly Gauge _progressRatio;
    private readonly Gauge _progressCompleted;
    private readonly Gauge _progressTotal;

    public BackupCatalogMetrics(AgentMetrics metrics, AgentOptions options, AgentRuntime runtime, StatusCache cache, OperationRegistry operations)
    {
        _options = options;
        _cache = cache;
        _operations = operations;
        _listsAnnotations = runtime.Capabilities.Version >= AnnotationsVersion;
        var factory = Prometheus.Metrics.WithCustomRegistry(metrics.Registry);
        string[] repo = ["stanza", "repo"];
        _stanzaStatus = factory.CreateGauge("pgbackrest_stanza_status_code",
            "pgBackRest's stanza status code over every repository read (0 ok, 1 missing stanza path, 2 no valid backups, " +
            "3 missing stanza data, 4 different across repos, 6 backup/expire running, 99 other).", ["stanza"]);
        _lockHeld = factory.CreateGauge("pgbackrest_stanza_lock_held",
            "1 while pgBackRest's backup (also expire, stanza commands) or restore lock is held in the agent's lock path, by " +
            "the agent or anyone else, as of the last info read; restore absent before pgBackRest 2.56.", ["stanza", "kind"]);
        _repoStatus = factory.CreateGauge("pgbackrest_repo_status_code", "The repository's own status code in pgbackrest info (codes as the stanza's).", repo);
        _infoFailing = factory.CreateGauge("pgbackrest_info_failing",
            "1 when the last pgbackrest info of the repository failed (the other figures are then its last known ones), else 0.", repo);
        _count = factory.CreateGauge("pgbackrest_backups", "Backups of the type the repository holds.", StanzaRepoType);
        _completion = factory.CreateGauge("pgbackrest_backup_last_completion_timestamp_seconds",
            "When the newest backup of exactly this type stopped (info timestamp.stop). A full also covers diff and incr: " +
            "max over type=~\"full|diff\" is the newest diff-or-better.", StanzaRepoType);
        _duration = factory.CreateGauge("pgbackrest_backup_last_duration_seconds", "How long the newest backup of the type took (stop - start).", StanzaRepoType);
        _databaseSize = factory.CreateGauge("pgbackrest_backup_last_database_size_bytes", "Size of the database the newest backup of the type copies (info.size).", StanzaRepoType);
        _databaseDelta = factory.CreateGauge("pgbackrest_backup_last_database_delta_bytes", "Database bytes the newest backup of the type copied (info.delta).", StanzaRepoType);
        _repoSize = factory.CreateGauge("pgbackrest_backup_last_repo_size_bytes",
            "Repository bytes of the newest backup of the type, with its references (info.repository.size); absent for block incremental.", StanzaRepoType);
        _repoDelta = factory.CreateGauge("pgbackrest_backup_last_repo_delta_bytes",
            "Repository bytes the newest backup of the type added (info.repository.delta); absent when not reported.", StanzaRepoType);
        _repoSizeMap = factory.CreateGauge("pgbackrest_backup_last_repo_size_map_bytes",
            "Block-incremental map size of the newest backup of the type (pgBackRest 2.46+); absent otherwise.", StanzaRepoType);
        _repoDeltaMap = factory.CreateGauge("pgbackrest_backup_last_repo_delta_map_bytes",
            "Block-incremental map delta of the newest backup of the type (pgBackRest 2.46+); absent otherwise.", StanzaRepoType);
        _error = factory.CreateGauge("pgbackrest_backup_last_error",
            "1 when pgBackRest found errors (page checksums) in the newest backup of the type, 0 when none; absent when not reported.", StanzaRepoType);
        _references = factory.CreateGauge("pgbackrest_backup_last_references",
            "Backups the newest backup of the type needs to restore (info reference list; 0 for a full).", StanzaRepoType);
        _annotations = factory.CreateGauge("pgbackrest_backup_last_annotations",
            "Annotations (backrestctl/pgbackrest annotate) on the newest backup of the type; absent before pgBackRest 2.41.", StanzaRepoType);
        _progressRatio = factory.CreateGauge("pgbackrest_operation_progress_ratio",
            "Progress of the running backup or restore, 0 to 1; absent when none runs or its progress is unknown yet.", ["stanza", "kind"]);
        _progressCompleted = factory.CreateGauge("pgbackrest_operation_progress_completed_bytes",
            "Bytes the running backup or restore has copied, from pgBackRest's lock (backup 2.48+, restore 2.56+); absent otherwise.", ["stanza", "kind"]);
        _progressTotal = factory.CreateGauge("pgbackrest_operation_progress_total_bytes",
            "Bytes the running backup or restore will copy, from pgBackRest's lock (backup 2.48+, restore 2.56+); absent otherwise.", ["stanza", "kind"]);
        metrics.Registry.AddBeforeCollectCallback(Collect);
    }

    private void Collect()
    {
        var stanza = _options.Stanza;
        var snapshot = _cache.Snapshot();
        var codes = new HashSet<int>();
        LockInfo? backupLock = null;
        LockInfo? restoreLock = null;
        foreach (var r in snapshot.Repositories)
        {
            var key = r.Repo.ToString();
            var read = r.Read;
            AgentMetrics.SetOrRemove(_repoStatus, read.StatusCode, stanza, key);
            AgentMetrics.SetOrRemove(_infoFailing, read.TriedAt is null ? null : read.Error is null ? 0 : 1, stanza, key);
            if (read.StatusCode is { } code)
            {
                codes.Add(code);
            }

            if (read.Info is { } info)
            {
                backupLock = info.BackupLock.Held ? info.BackupLock : backupLock;
                restoreLock = info.RestoreLock is { Held: true } held ? held : restoreLock;
            }

            foreach (var type in BackupSummary.BackupTypes)
            {
                CollectType(read.Summary?.Types.FirstOrDefault(t => t.Type == type), type, stanza, key);
            }
        }

        // Different codes across repositories is pgBackRest's own code 4.
        AgentMetrics.SetOrRemove(_stanzaStatus, codes.Count switch { 0 => null, 1 => codes.Single(), _ => 4 }, stanza);
        // Each repository's info reads the same local lock path; pgBackRest reports the restore lock from 2.56 only.
        var infos = snapshot.Repositories.Select(r => r.Read.Info).OfType<StanzaInfo>().ToList();
        AgentMetrics.SetOrRemove(_lockHeld, infos.Count == 0 ? null : backupLock is null ? 0 : 1, stanza, "backup");
        AgentMetrics.SetOrRemove(_lockHeld, infos.Any(i => i.RestoreLock is not null) ? restoreLock is null ? 0 : 1 : null, stanza, "restore");
        CollectProgress(stanza, backupLock, restoreLock);
    }

    private void CollectType(BackupTypeSummary? summary, string type, string stanza, string repo)
    {
        var last = summary?.Last;
        string[] labels = [stanza, repo, type];
        AgentMetrics.SetOrRemove(_count, summary?.Count, labels);
        AgentMetrics.SetOrRemove(_completion, last?.Stop.ToUnixTimeSeconds(), labels);
        AgentMetrics.SetOrRemove(_duration, last is null ? null : (last.Stop - last.Start).TotalSeconds, labels);
        AgentMetrics.SetOrRemove(_databaseSize, last?.DatabaseSize, labels);
        AgentMetrics.SetOrRemove(_databaseDelta, last?.DatabaseDelta, labels);
        AgentMetrics.SetOrRemove(_repoSize, last?.RepositorySize, labels);
        AgentMetrics.SetOrRemove(_repoDelta, last?.RepositoryDelta, labels);
        AgentMetrics.SetOrRemove(_repoSizeMap, last?.RepositorySizeMap, labels);
        AgentMetrics.SetOrRemove(_repoDeltaMap, last?.RepositoryDeltaMap, labels);
        AgentMetrics.SetOrRemove(_error, last?.Error is { } error ? error ? 1 : 0 : null, labels);
        AgentMetrics.SetOrRemove(_references, last?.References.Count, labels);
        AgentMetrics.SetOrRemove(_annotations, last is null ? null : last.Annotations ?? (_listsAnnotations ? 0 : null), labels);
    }

    private void CollectProgress(string stanza, LockInfo? backupLock, LockInfo? restoreLock)
    {
        var running = _operations.Running;
        foreach (var (kind, held) in new[] { (OperationKind.Backup, backupLock), (OperationKind.Restore, restoreLock) })
        {
            var name = kind.ToString().ToLowerInvariant();
            var ours = running?.Kind == kind ? running : null;
            AgentMetrics.SetOrRemove(_progressRatio, ours is { Percent: >= 0 } ? ours.Percent / 100 : null, stanza, name);
            AgentMetrics.SetOrRemove(_progressCompleted, held?.SizeComplete, stanza, name);
            AgentMetrics.SetOrRemove(_progressTotal, held?.Size, stanza, name);
        }
    }
}
