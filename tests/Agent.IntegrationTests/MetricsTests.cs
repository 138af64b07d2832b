using System.Globalization;
using System.Text.RegularExpressions;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;

namespace Backrest.Agent.IntegrationTests;

/// <summary>Prometheus /metrics on its own port: archive figures a scraper can alert on.</summary>
public sealed class MetricsTests
{
    [Fact]
    public async Task Metrics_AfterArchivingAndBackup_ShowPushesBacklogAndRecoveryWindow()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.BackupAsync("full");
        var segment = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(segment);

        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");

        Assert.True(Value(text, "pgbackrest_archive_pushed_total", "repo=\"1\"") >= 1, text);
        Assert.Equal(0, Value(text, "pgbackrest_archive_push_failures_total", "repo=\"1\""));
        Assert.True(Value(text, "pgbackrest_archive_push_duration_seconds_count", "result=\"ok\"") >= 1);
        Assert.Equal(0, Value(text, "pgbackrest_wal_archive_ready_files", "stanza"));
        Assert.True(Value(text, "pgbackrest_pg_archiver_archived_total", "stanza") >= 1);
        var earliest = Value(text, "pgbackrest_recovery_window_earliest_timestamp_seconds", "repo=\"1\"");
        var backup = (await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Single();
        Assert.Equal(backup.Stopped.Seconds, (long)earliest);

        // The metrics port speaks HTTP/1.1 only, so the gRPC API cannot be called through it.
        var api = await http.PostAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/backrest.agent.v1.BackupAgent/GetStatus", null);
        Assert.False(api.IsSuccessStatusCode);
    }

    private static double Value(string exposition, string name, string labelFragment)
    {
        var line = exposition.Split('\n').FirstOrDefault(l =>
            l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains(labelFragment, StringComparison.Ordinal));
        Assert.True(line is not null, $"{name} with {labelFragment} missing");
        return double.Parse(Regex.Match(line!, @"\s(\S+)$").Groups[1].Value, CultureInfo.InvariantCulture);
    }
}
