using System.Text.RegularExpressions;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// A real Prometheus scrapes a running agent after a full backup and WAL pushes: the key series read through Prometheus's
/// HTTP API, and every metric name the shipped alerts and dashboard use (deploy/kubernetes/components/monitoring) is one
/// the agent exports. Schedules and retention are set so that the series derived from them exist.
/// </summary>
public sealed partial class PrometheusTests : IClassFixture<PrometheusTests.ScrapedAgent>
{
    private readonly ScrapedAgent _agent;

    public PrometheusTests(ScrapedAgent agent) => _agent = agent;

    [Fact]
    public async Task Prometheus_AfterBackupAndWalPush_LastFullIsTheBackupsStopAndArchiveCountersMove()
    {
        var prometheus = _agent.Prometheus;
        var backup = (await _agent.Env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Single();

        var lastFull = await prometheus.WaitForValueAsync(
            "pgbackrest_backup_last_completion_timestamp_seconds{stanza=\"test\",repo=\"1\",type=\"full\"}", _ => true);
        Assert.Equal(backup.Stopped.Seconds, (long)lastFull);
        Assert.Equal(1, await prometheus.WaitForValueAsync("pgbackrest_backups{type=\"full\"}", _ => true));
        Assert.Equal(0, await prometheus.WaitForValueAsync("pgbackrest_repo_status_code{repo=\"1\"}", _ => true));
        Assert.Equal(1, await prometheus.WaitForValueAsync("pgbackrest_repo_up{repo=\"1\"}", _ => true));
        Assert.Equal(1, await prometheus.WaitForValueAsync($"up{{job=\"{PrometheusServer.Job}\"}}", _ => true));
        // The window reaches back to the backup's end.
        Assert.Equal(backup.Stopped.Seconds, (long)await prometheus.WaitForValueAsync(
            "pgbackrest_recovery_window_earliest_timestamp_seconds{repo=\"1\"}", _ => true));

        var pushed = await prometheus.WaitForValueAsync("pgbackrest_archive_pushed_total{repo=\"1\"}", v => v >= 1);
        var archived = await prometheus.WaitForValueAsync("pgbackrest_pg_archiver_archived_total", v => v >= 1);
        var pushRuns = await prometheus.WaitForValueAsync("pgbackrest_commands_total{command=\"archive-push\",result=\"ok\"}", v => v >= 1);
        // Write first: a switch with nothing written since the last one starts no new segment.
        await _agent.Env.Postgres.ExecuteAsync("create table prometheus_probe_2 (n int)");
        var segment = await _agent.Env.Postgres.SwitchWalAsync();
        await _agent.Env.Postgres.WaitForArchivedAsync(segment);

        Assert.True(await prometheus.WaitForValueAsync("pgbackrest_archive_pushed_total{repo=\"1\"}", v => v > pushed) > pushed);
        Assert.True(await prometheus.WaitForValueAsync("pgbackrest_pg_archiver_archived_total", v => v > archived) > archived);
        Assert.True(await prometheus.WaitForValueAsync("pgbackrest_commands_total{command=\"archive-push\",result=\"ok\"}", v => v > pushRuns) > pushRuns);
        Assert.Equal(0, await prometheus.WaitForValueAsync("sum(pgbackrest_archive_push_failures_total)", _ => true));
        Assert.True(await prometheus.WaitForValueAsync("pgbackrest_archive_last_success_timestamp_seconds", _ => true) >= backup.Stopped.Seconds);
    }

    [Fact]
    public async Task ExporterSeries_AfterBackupAndWalPush_ClusterAgeCatalogDetailsAndArchivePosition()
    {
        var prometheus = _agent.Prometheus;
        var postgres = _agent.Env.Postgres;
        // initdb's time, from the same system identifier the repository records.
        var initdb = await postgres.ScalarAsync<long>("select system_identifier >> 32 from pg_control_system()");
        Assert.Equal(initdb, (long)await prometheus.WaitForValueAsync("pgbackrest_stanza_database_created_timestamp_seconds{repo=\"1\"}", _ => true));
        Assert.InRange(initdb, DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.ToUnixTimeSeconds());

        // The newest full: no references, no annotations (pgBackRest 2.45 lists them, so none is 0).
        Assert.Equal(0, await prometheus.WaitForValueAsync("pgbackrest_backup_last_references{repo=\"1\",type=\"full\"}", _ => true));
        Assert.Equal(0, await prometheus.WaitForValueAsync("pgbackrest_backup_last_annotations{repo=\"1\",type=\"full\"}", _ => true));
        Assert.Empty(await prometheus.QueryAsync("pgbackrest_backup_last_references{type=\"diff\"}"));
        Assert.Equal(0, await prometheus.WaitForValueAsync("pgbackrest_stanza_lock_held{kind=\"backup\"}", _ => true));
        // 2.45 does not report the restore lock: unknown, absent.
        Assert.Empty(await prometheus.QueryAsync("pgbackrest_stanza_lock_held{kind=\"restore\"}"));
        Assert.Equal(0, await prometheus.WaitForValueAsync("pgbackrest_archive_async_error_files", _ => true));
        Assert.True(await prometheus.WaitForValueAsync("pgbackrest_wal_archive_done_files", _ => true) >= 0);
        Assert.True(await prometheus.WaitForValueAsync("time() - pgbackrest_wal_archive_sampled_timestamp_seconds", _ => true) < 30);

        // The archive's newest segment as a byte position: where the segment just pushed starts.
        await postgres.ExecuteAsync("create table prometheus_probe_lsn (n int)");
        var segment = await postgres.SwitchWalAsync();
        await postgres.WaitForArchivedAsync(segment);
        var segmentSize = await postgres.ScalarAsync<long>("select setting::bigint from pg_settings where name = 'wal_segment_size'");
        var start = (Convert.ToInt64(segment[8..16], 16) << 32) + Convert.ToInt64(segment[16..24], 16) * segmentSize;
        Assert.Equal(start, (long)await prometheus.WaitForValueAsync("pgbackrest_archive_max_segment_lsn_bytes{repo=\"1\"}", v => (long)v == start));
        Assert.True(await postgres.ScalarAsync<decimal>("select pg_current_wal_lsn() - '0/0'") >= start);
    }

    [Fact]
    public async Task DeployedRulesAndDashboard_UseOnlyMetricNamesTheAgentExports()
    {
        var monitoring = Path.Combine(HarnessPaths.RepositoryRoot, "deploy", "kubernetes", "components", "monitoring");
        var used = new[] { "prometheusrule.yaml", Path.Combine("dashboards", "backrest-agent.json") }
            .SelectMany(f => MetricName().Matches(File.ReadAllText(Path.Combine(monitoring, f))).Select(m => m.Value))
            .ToHashSet();
        // pgbackrest_exporter's and pgMonitor's series the README maps onto ours, also those no rule or panel uses yet.
        used.UnionWith(ExporterParityNames);
        using var http = new HttpClient();
        var exposition = await http.GetStringAsync($"http://127.0.0.1:{_agent.Env.Agent.MetricsPort}/metrics");
        // Declared families (also those without a series right now) and the sample names (histograms' _bucket, _sum, _count).
        var exported = exposition.Split('\n')
            .Select(l => l.StartsWith("# TYPE ", StringComparison.Ordinal) ? l.Split(' ')[2] : l.StartsWith('#') ? "" : l.Split('{', ' ')[0])
            .Where(n => n.Length > 0)
            .Concat(await _agent.Prometheus.MetricNamesAsync())
            .ToHashSet();

        Assert.True(used.Count >= 25, $"only {used.Count} names found in {monitoring}");
        Assert.Empty(used.Except(exported).Order());
    }

    [Fact]
    public async Task ShippedAlerts_OnAHealthyAgentWithAFreshBackup_EvaluateOnRealSeriesAndStayQuiet()
    {
        var prometheus = _agent.Prometheus;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var rules = await prometheus.RulesAsync();
        while (rules.Any(r => r.Health != "ok") && DateTime.UtcNow < deadline)
        {
            await Task.Delay(250);
            rules = await prometheus.RulesAsync();
        }

        Assert.True(rules.Count >= 13, $"{rules.Count} rules loaded");
        Assert.All(rules, r => Assert.True(r.Health == "ok", $"{r.Name}: {r.Health} {r.Error}"));
        // Retention of 2 yearly fulls promises a year and the window is minutes long, but so is the cluster: the window
        // half of the rule finds the repository, the whole rule does not (it would, on a cluster older than a year).
        var window = Rule().Matches(File.ReadAllText(RuleFile)).Single(m => m.Groups["alert"].Value == "BackrestRecoveryWindowShort").Groups["expr"].Value;
        var windowOnly = window.Split("\n            and\n")[0];
        Assert.NotEqual(window, windowOnly);
        await prometheus.WaitForValueAsync("pgbackrest_stanza_database_created_timestamp_seconds{repo=\"1\"}", _ => true);
        Assert.Equal("1", Assert.Single(await prometheus.QueryAsync(windowOnly)).Labels["repo"]);
        Assert.Empty(await prometheus.QueryAsync(window));
        Assert.Empty(await prometheus.QueryAsync("ALERTS"));

        // The backup-age rules join the catalog with the schedules on the labels a real scrape gives them: with no slack
        // at all, each finds the repository (a join on mismatched labels would find nothing and never fire).
        var ageRules = Rule().Matches(File.ReadAllText(RuleFile)).Where(m => m.Groups["alert"].Value.EndsWith("BackupTooOld", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, ageRules.Count);
        foreach (var rule in ageRules)
        {
            var noSlack = rule.Groups["expr"].Value.Replace("* 1.25 + 3600", "* 0", StringComparison.Ordinal);
            Assert.NotEqual(rule.Groups["expr"].Value, noSlack);
            var found = await prometheus.QueryAsync(noSlack);
            Assert.True(found.Count == 1 && found[0].Labels["repo"] == "1", $"{rule.Groups["alert"].Value} without slack found {found.Count} series");
        }
    }

    private static string RuleFile => Path.Combine(HarnessPaths.RepositoryRoot, "deploy", "kubernetes", "components", "monitoring", "prometheusrule.yaml");

    /// <summary>The rule groups of the PrometheusRule as a plain rules file: below `spec:`, one indent less (as tests/prometheus/check-rules.sh).</summary>
    private static string RulesFileText() =>
        string.Join('\n', File.ReadAllText(RuleFile).Split("\nspec:\n", 2)[1].Split('\n').Select(l => l.StartsWith("  ", StringComparison.Ordinal) ? l[2..] : l));

    /// <summary>Series added for parity with pgbackrest_exporter and pgMonitor (README, Metrics).</summary>
    private static readonly string[] ExporterParityNames =
    [
        "pgbackrest_backup_last_references", "pgbackrest_backup_last_annotations", "pgbackrest_stanza_lock_held",
        "pgbackrest_archive_max_segment_lsn_bytes", "pgbackrest_stanza_database_created_timestamp_seconds",
        "pgbackrest_wal_archive_done_files", "pgbackrest_archive_async_error_files", "pgbackrest_wal_archive_sampled_timestamp_seconds",
    ];

    [GeneratedRegex(@"- alert: (?<alert>\w+)\n\s+(?:#[^\n]*\n\s+)*expr: \|\n(?<expr>(?:\s{12}[^\n]*\n)+)")]
    private static partial Regex Rule();

    [GeneratedRegex(@"\b(?:pgbackrest|grpc_server)_[a-z0-9_]+")]
    private static partial Regex MetricName();

    /// <summary>One agent with a full backup and archived WAL, a schedule per type and retention, scraped by Prometheus.</summary>
    public sealed class ScrapedAgent : IAsyncLifetime
    {
        public TestEnvironment Env { get; private set; } = null!;

        public PrometheusServer Prometheus { get; private set; } = null!;

        public async Task InitializeAsync()
        {
            Env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
            {
                AgentSettings = new Dictionary<string, string?>
                {
                    // Once a year on 1 January: they never fire during a test.
                    ["Agent__Repositories__0__Schedules__Full"] = "0 3 1 1 *",
                    ["Agent__Repositories__0__Schedules__Diff"] = "0 4 1 1 *",
                    ["Agent__Repositories__0__Schedules__Incr"] = "0 5 1 1 *",
                    ["Agent__Repositories__0__RetentionFull"] = "2",
                },
            });
            await Env.Client.CreateStanzaAsync(new CreateStanzaRequest());
            await Env.BackupAsync("full");
            await Env.Postgres.ExecuteAsync("create table prometheus_probe_1 (n int)");
            var segment = await Env.Postgres.SwitchWalAsync();
            await Env.Postgres.WaitForArchivedAsync(segment);
            Prometheus = await PrometheusServer.StartAsync([$"127.0.0.1:{Env.Agent.MetricsPort}"], RulesFileText());
        }

        public async Task DisposeAsync()
        {
            if (Prometheus is not null)
            {
                await Prometheus.DisposeAsync();
            }

            if (Env is not null)
            {
                await Env.DisposeAsync();
            }
        }
    }
}
