using System.Reflection;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.PgBackRest;
using Prometheus;

namespace Backrest.Agent.Server.Metrics;

/// <summary>
/// Which agent and pgBackRest run (info series, value 1), and every pgBackRest run the agent made: its duration by
/// command and its outcome by exit code, counted as each run ends (never by running anything at scrape time).
/// </summary>
internal sealed class PgBackRestMetrics
{
    private readonly string _stanza;
    private readonly Histogram _duration;
    private readonly Counter _runs;

    public PgBackRestMetrics(AgentMetrics metrics, AgentOptions options, AgentRuntime runtime, PgBackRestClient pgBackRest)
    {
        _stanza = options.Stanza;
        var factory = Prometheus.Metrics.WithCustomRegistry(metrics.Registry);
        var version = typeof(PgBackRestMetrics).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
        var plus = version.IndexOf('+');
        factory.CreateGauge("pgbackrest_agent_build_info", "The running backrest-agent: version and source revision (value 1).", ["version", "revision"])
            .WithLabels(plus < 0 ? version : version[..plus], plus < 0 ? "" : version[(plus + 1)..]).Set(1);
        factory.CreateGauge("pgbackrest_version_info", "The pgBackRest binary the agent runs (value 1).", ["version"])
            .WithLabels(runtime.Capabilities.Version.ToString(3)).Set(1);
        _duration = factory.CreateHistogram("pgbackrest_command_duration_seconds",
            "How long each pgBackRest run took, by command (archive-push, archive-get, backup, info, expire, restore, ...).",
            new HistogramConfiguration
            {
                LabelNames = ["stanza", "command"],
                // From a WAL push (tens of ms) to a full backup (hours).
                Buckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 10800],
            });
        _runs = factory.CreateCounter("pgbackrest_commands_total",
            "pgBackRest runs by command and result (ok, error, stopped) with pgBackRest's exit code (none when stopped).",
            ["stanza", "command", "result", "exit_code"]);
        pgBackRest.CommandFinished += Observe;
    }

    private void Observe(string command, int? exitCode, TimeSpan duration)
    {
        _duration.WithLabels(_stanza, command).Observe(duration.TotalSeconds);
        var result = exitCode switch { null => "stopped", 0 => "ok", _ => "error" };
        _runs.WithLabels(_stanza, command, result, exitCode?.ToString() ?? "none").Inc();
    }
}
