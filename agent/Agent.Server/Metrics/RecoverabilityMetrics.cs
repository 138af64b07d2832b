using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Status;
using Prometheus;

namespace Backrest.Agent.Server.Metrics;

/// <summary>
/// Whether the backups can actually be restored, in the agent's registry beside <see cref="AgentMetrics"/>: archive gaps
/// (a restore to latest stops at the first one). Read from the status cache at scrape time; unknown is absent.
/// </summary>
internal sealed class RecoverabilityMetrics
{
    private readonly AgentOptions _options;
    private readonly StatusCache _cache;
    private readonly Gauge _missingSegments;
    private readonly Gauge _continuityChecked;

    public RecoverabilityMetrics(AgentMetrics metrics, AgentOptions options, StatusCache cache)
    {
        _options = options;
        _cache = cache;
        var factory = Prometheus.Metrics.WithCustomRegistry(metrics.Registry);
        string[] repo = ["stanza", "repo"];
        _missingSegments = factory.CreateGauge("pgbackrest_archive_missing_segments",
            "WAL segments missing from the repository's archive between the oldest backup's start and the newest archived " +
            "segment; above 0, a restore to latest stops at the first gap. Absent until the archive was listed.", repo);
        _continuityChecked = factory.CreateGauge("pgbackrest_archive_continuity_checked_timestamp_seconds",
            "When the repository's archive was last listed for gaps.", repo);
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
        }
    }
}
