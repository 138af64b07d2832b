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
        // Write first, so the switch starts a new segment: the archiver sends it after the backup's .backup file, and
        // waiting for it means nothing is left ready (a switch right after the backup only names the segment just archived).
        await env.Postgres.ExecuteAsync("create table metrics_probe (n int)");
        var segment = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(segment);
        var archivedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;

        using var http = new HttpClient();
        // The backlog drains: PostgreSQL may mark one more file ready (the backup's history file) right after the switch.
        // The archiving figures are a background sample: wait for one taken after the segment was archived (an older one
        // also shows no ready file, from before the backup).
        var text = await ScrapeUntilAsync(http, env, t =>
            Value(t, "pgbackrest_wal_archive_sampled_timestamp_seconds", "stanza") >= archivedAt &&
            Value(t, "pgbackrest_wal_archive_ready_files", "stanza") == 0);

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

    [Fact]
    public async Task Metrics_AfterFullBackup_CatalogPerTypeCommandsAndGrpcCallsFromTheCache()
    {
        await using var env = await TestEnvironment.CreateAsync();
        using var http = new HttpClient();
        var before = await ScrapeUntilAsync(http, env, t => t.Contains("pgbackrest_repo_status_code{", StringComparison.Ordinal));
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.BackupAsync("full");
        var segment = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(segment);
        // A refused call is counted with its code, like a served one.
        await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await env.Client.StartBackupAsync(new StartBackupRequest { Type = "weekly" }));
        // Made-up methods are counted under "unknown": a caller cannot add series by inventing paths.
        var invoker = env.Agent.Channel.CreateCallInvoker();
        var bytes = Grpc.Core.Marshallers.Create<byte[]>(b => b, b => b);
        foreach (var (service, method) in new[] { ("backrest.agent.v1.BackupAgent", "NoSuchMethod"), ("made.up.Service", "NoSuchCall") })
        {
            var call = invoker.AsyncUnaryCall(new Grpc.Core.Method<byte[], byte[]>(Grpc.Core.MethodType.Unary, service, method, bytes, bytes), null, new(), []);
            Assert.Equal(Grpc.Core.StatusCode.Unimplemented, (await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await call)).StatusCode);
        }

        var text = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");

        var backup = (await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Single();
        Assert.Equal(backup.Stopped.Seconds, (long)Value(text, "pgbackrest_backup_last_completion_timestamp_seconds", "type=\"full\""));
        Assert.Equal(backup.Stopped.Seconds - backup.Started.Seconds,
            (long)Value(text, "pgbackrest_backup_last_duration_seconds", "type=\"full\""));
        Assert.Equal(1, Value(text, "pgbackrest_backups", "type=\"full\""));
        // Known to be none is 0; the newest diff of none has no time, size or duration: absent, never 0.
        Assert.Equal(0, Value(text, "pgbackrest_backups", "type=\"diff\""));
        Assert.DoesNotContain("pgbackrest_backup_last_completion_timestamp_seconds{stanza=\"test\",repo=\"1\",type=\"diff\"}", text);
        Assert.DoesNotContain("pgbackrest_backup_last_repo_size_bytes{stanza=\"test\",repo=\"1\",type=\"diff\"}", text);
        Assert.True(Value(text, "pgbackrest_backup_last_database_size_bytes", "type=\"full\"") > 1_000_000);
        Assert.True(Value(text, "pgbackrest_backup_last_repo_size_bytes", "type=\"full\"") > 0);
        // pgBackRest 2.45 reports no block-incremental map and no progress bytes: absent.
        Assert.DoesNotContain("pgbackrest_backup_last_repo_size_map_bytes{", text);
        Assert.DoesNotContain("pgbackrest_operation_progress_completed_bytes{", text);
        Assert.Equal(0, Value(text, "pgbackrest_stanza_status_code", "stanza=\"test\""));
        Assert.Equal(0, Value(text, "pgbackrest_repo_status_code", "repo=\"1\""));
        Assert.Equal(0, Value(text, "pgbackrest_info_failing", "repo=\"1\""));
        Assert.Equal(1, Value(text, "pgbackrest_version_info", "version=\"2.45.0\""));
        Assert.Equal(1, Value(text, "pgbackrest_agent_build_info", "version="));

        Assert.Equal(1, Value(text, "pgbackrest_commands_total", "command=\"backup\",result=\"ok\",exit_code=\"0\""));
        Assert.True(Value(text, "pgbackrest_commands_total", "command=\"archive-push\",result=\"ok\"") >= 1);
        Assert.True(Value(text, "pgbackrest_command_duration_seconds_count", "command=\"info\"") >= 1);
        Assert.Equal(1, Value(text, "grpc_server_handled_total", "grpc_method=\"StartBackup\",grpc_code=\"OK\""));
        Assert.Equal(1, Value(text, "grpc_server_handled_total", "grpc_method=\"StartBackup\",grpc_code=\"InvalidArgument\""));
        Assert.True(Value(text, "grpc_server_handled_total", "grpc_service=\"backrest.agent.v1.WalArchive\",grpc_method=\"PushWal\",grpc_code=\"OK\"") >= 1);
        Assert.True(Value(text, "grpc_server_handling_seconds_count", "grpc_method=\"StartBackup\"") >= 2);
        Assert.DoesNotContain("NoSuch", text);
        Assert.Equal(2, Value(text, "grpc_server_handled_total", "grpc_service=\"unknown\",grpc_method=\"unknown\",grpc_code=\"Unimplemented\""));

        // Before the stanza existed: pgBackRest's own code for it, and nothing about backups a repository cannot hold.
        Assert.Equal(1, Value(before, "pgbackrest_repo_status_code", "repo=\"1\""));
        Assert.DoesNotContain("pgbackrest_backup_last_completion_timestamp_seconds{", before);
    }

    [Fact]
    public async Task Metrics_PostgresStopped_ArchiverFiguresAbsentBacklogStillSampled()
    {
        await using var env = await TestEnvironment.CreateAsync();
        using var http = new HttpClient();
        const string archived = "pgbackrest_pg_archiver_archived_total{";
        await ScrapeUntilAsync(http, env, t => t.Contains(archived, StringComparison.Ordinal));

        await env.Postgres.StopAsync();
        // Unknown while PostgreSQL does not answer: absent, not the last figures seen (the background sample drops them).
        var text = await ScrapeUntilAsync(http, env, t => !t.Contains(archived, StringComparison.Ordinal));

        Assert.DoesNotContain(archived, text);
        Assert.DoesNotContain("pgbackrest_pg_archiver_last_archived_timestamp_seconds{", text);
        // pg_wal is still there to list.
        Assert.True(Value(text, "pgbackrest_wal_archive_ready_files", "stanza") >= 0);
        var sampled = Value(text, "pgbackrest_wal_archive_sampled_timestamp_seconds", "stanza");
        Assert.InRange(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - sampled, -1, 30);
    }

    /// <summary>Scrapes until the exposition satisfies the condition (figures that settle in the background), at most 30 s.</summary>
    private static async Task<string> ScrapeUntilAsync(HttpClient http, TestEnvironment env, Func<string, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var text = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
            if (condition(text) || DateTime.UtcNow > deadline)
            {
                return text;
            }

            await Task.Delay(100);
        }
    }

    /// <summary>The value of the first series of <paramref name="name"/> whose labels contain <paramref name="labelFragment"/>.</summary>
    internal static double Value(string exposition, string name, string labelFragment)
    {
        var line = exposition.Split('\n').FirstOrDefault(l =>
            l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains(labelFragment, StringComparison.Ordinal));
        Assert.True(line is not null, $"{name} with {labelFragment} missing");
        return double.Parse(Regex.Match(line!, @"\s(\S+)$").Groups[1].Value, CultureInfo.InvariantCulture);
    }
}
