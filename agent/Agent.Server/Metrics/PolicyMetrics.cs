using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Retention;
using Backrest.Agent.Core.Schedules;
using Prometheus;

namespace Backrest.Agent.Server.Metrics;

/// <summary>
/// What the configuration promises, as series alerts compare the catalog against: the longest time between two runs of
/// each backup schedule, and the recovery window retention should keep. Set once at start-up (settings do not change
/// while the agent runs); absent where there is no schedule or no such promise.
/// </summary>
internal sealed class PolicyMetrics
{
    public PolicyMetrics(AgentMetrics metrics, AgentOptions options, TimeProvider time)
    {
        var factory = Prometheus.Metrics.WithCustomRegistry(metrics.Registry);
        var interval = factory.CreateGauge("pgbackrest_backup_schedule_interval_seconds",
            "The longest time between two runs of the repository's schedule for the backup type (Agent:Repositories:N:Schedules).",
            ["stanza", "repo", "type"]);
        var window = factory.CreateGauge("pgbackrest_recovery_window_target_seconds",
            "How far back the repository should restore once retention is full: RetentionFull days, or RetentionFull - 1 full schedule intervals.",
            ["stanza", "repo"]);
        var now = time.GetUtcNow();
        var schedules = BackupSchedule.All(options);
        foreach (var schedule in schedules)
        {
            AgentMetrics.SetOrRemove(interval, schedule.LongestInterval(now)?.TotalSeconds, options.Stanza, schedule.Repo.ToString(), schedule.Type);
        }

        foreach (var policy in RetentionPolicy.All(options))
        {
            var full = schedules.FirstOrDefault(s => s.Repo == policy.Repo && s.Type == "full")?.LongestInterval(now);
            AgentMetrics.SetOrRemove(window, policy.ExpectedWindow(full)?.TotalSeconds, options.Stanza, policy.Repo.ToString());
        }
    }
}
