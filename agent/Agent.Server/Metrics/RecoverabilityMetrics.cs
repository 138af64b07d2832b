using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Status;
using Backrest.Agent.Core.Verify;
using Prometheus;

namespace Backrest.Agent.Server.Metrics;

/// <summary>
/// Whether the backups can actually be restored, in the agent's registry beside <see cref="AgentMetrics"/>: archive gaps
/// (a restore to latest stops at the first one) and the last verify of each repository. Read from the status cache and
/// the verify service at scrape time; unknown is absent.
/// </summary>
internal sealed class RecoverabilityMetrics
{
    private readonly AgentOptions _options;
    private readonly StatusCache _cache;
    private readonly VerifyService _verify;
    private readonly Gauge _verifyOk;
    private readonly Gauge _verifyErrors;
    private readonly Gauge _verifyTime;
    private readonly Gauge _missingSegments;
    private readonly Gauge _continuityChecked;

    public RecoverabilityMetrics(AgentMetrics metrics, AgentOptions options, StatusCache cache, VerifyService verify)
    {
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
            "1 when the repository's last pgBackRest verify found nothing damaged, 0 when it found damage or could not finish; absent before the first since the agent started.", repo);
        _verifyErrors = factory.CreateGauge("pgbackrest_verify_errors",
            "Backup files and WAL segments the repository's last verify found invalid, plus its job errors.", repo);
        _verifyTime = factory.CreateGauge("pgbackrest_verify_last_timestamp_seconds", "When the repository's last verify finished.", repo);
        metrics.Registry.AddBeforeCollectCallback(Collect);
    }

    private void Collect()
    {
        foreach (var r in _cache.Snapshot().Repositories)
        {
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
