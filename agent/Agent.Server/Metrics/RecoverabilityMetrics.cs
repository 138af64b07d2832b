using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Drills;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.Status;
using Backrest.Agent.Core.Verify;
using Prometheus;

namespace Backrest.Agent.Server.Metrics;

/// <summary>
/// Whether the backups can actually be restored, in the agent's registry beside <see cref="AgentMetrics"/>: archive gaps
/// (a restore to latest stops at the first one), the last verify and the last restore drill of each repository. Read at
/// scrape time from the status cache, the verify and drill services and the operation history; unknown is absent.
/// </summary>
internal sealed class RecoverabilityMetrics
{
    private readonly AgentOptions _options;
    private readonly StatusCache _cache;
    private readonly VerifyService _verify;
    private readonly Gauge _verifyOk;
    private readonly Gauge _verifyErrors;
    private readonly Gauge _verifyTime;
    private readonly DrillService _drills;
    private readonly OperationRegistry _operations;
    private readonly Gauge _drillSuccess;
    private readonly Gauge _drillOk;
    private readonly Gauge _drillSeconds;
    private readonly Gauge _drillShortfall;
    private readonly Gauge _missingSegments;
    private readonly Gauge _continuityChecked;

    public RecoverabilityMetrics(AgentMetrics metrics, AgentOptions options, StatusCache cache, VerifyService verify, DrillService drills,
        OperationRegistry operations)
    {
        _drills = drills;
        _operations = operations;
        _options = options;
        _cache = cache;
        _verify = verify;
        var factory = Prometheus.Metrics.WithCustomRegistry(metrics.Registry);
        string[] repo = ["stanza", "repo"];
        _missingSegments = factory.CreateGauge("pgbackrest_archive_missing_segments",
            "WAL segments missing from the repository's archive between the oldest backup's start and the newest archived " +
            "segment; above 0, a restore to latest stops at the first gap. Absent until the archive was listed.", repo);
        _continuityChecked = factory.CreateGauge("pgbackrest_archive_continuity_checked_timestamp_seconds",
            "When the repository's archive was last listed for gaps.", repo);
        _verifyOk = factory.CreateGauge("pgbackrest_verify_last_status",
            "1 when the repository's last pgBackRest verify found nothing damaged, 0 when it found damage or could not finish; absent before the repository's first verify.", repo);
        _verifyErrors = factory.CreateGauge("pgbackrest_verify_errors",
            "Backup files and WAL segments the repository's last verify found invalid, plus its job errors.", repo);
        _verifyTime = factory.CreateGauge("pgbackrest_verify_last_timestamp_seconds", "When the repository's last verify finished.", repo);
        _drillSuccess = factory.CreateGauge("pgbackrest_drill_last_success_timestamp_seconds",
            "When the repository's last successful restore drill ended (from the operation history, so it survives restarts); absent if none is recorded.", repo);
        _drillOk = factory.CreateGauge("pgbackrest_drill_last_status",
            "1 when the repository's last restore drill succeeded, 0 when it failed.", repo);
        _drillSeconds = factory.CreateGauge("pgbackrest_drill_last_recovery_seconds",
            "The last successful drill's recovery time (RTO) by phase: restore (pgBackRest), replay (PostgreSQL until it opened), total.",
            ["stanza", "repo", "phase"]);
        _drillShortfall = factory.CreateGauge("pgbackrest_drill_last_shortfall",
            "1 when the last successful drill's recovery stopped before the newest archived WAL segment (a restore to latest would lose WAL).", repo);
        metrics.Registry.AddBeforeCollectCallback(Collect);
    }

    private void Collect()
    {
        var history = _operations.History.List(_operations.History.Capacity);
        var drills = _drills.Last;
        foreach (var r in _cache.Snapshot().Repositories)
        {
            string[] drillLabels = [_options.Stanza, r.Repo.ToString()];
            var description = DrillService.Description(r.Repo);
            if (history.FirstOrDefault(o => o.Kind == OperationKind.Drill && o.State == OperationState.Succeeded && o.Description == description)
                    is { Finished: { } succeeded })
            {
                _drillSuccess.WithLabels(drillLabels).Set(succeeded.ToUnixTimeMilliseconds() / 1000.0);
            }

            if (drills.TryGetValue(r.Repo, out var drill))
            {
                _drillOk.WithLabels(drillLabels).Set(drill.Succeeded ? 1 : 0);
                if (drill.Outcome is { } outcome)
                {
                    _drillSeconds.WithLabels([.. drillLabels, "restore"]).Set(outcome.Restore.TotalSeconds);
                    _drillSeconds.WithLabels([.. drillLabels, "replay"]).Set(outcome.Replay.TotalSeconds);
                    _drillSeconds.WithLabels([.. drillLabels, "total"]).Set(outcome.RecoveryTime.TotalSeconds);
                    _drillShortfall.WithLabels(drillLabels).Set(outcome.Shortfall ? 1 : 0);
                }
            }

            string[] labels = [_options.Stanza, r.Repo.ToString()];
            if (r.Continuity is { } continuity)
            {
                _missingSegments.WithLabels(labels).Set(continuity.MissingSegments);
                _continuityChecked.WithLabels(labels).Set(continuity.CheckedAt.ToUnixTimeMilliseconds() / 1000.0);
            }
            else
            {
                _missingSegments.RemoveLabelled(labels);
                _continuityChecked.RemoveLabelled(labels);
            }

            if (_verify.Last.TryGetValue(r.Repo, out var report))
            {
                _verifyOk.WithLabels(labels).Set(report.Ok ? 1 : 0);
                _verifyErrors.WithLabels(labels).Set(report.Errors);
                _verifyTime.WithLabels(labels).Set(report.Finished.ToUnixTimeMilliseconds() / 1000.0);
            }
        }
    }
}
