using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// Restore drills against the real thing: the newest backup restored into a scratch directory, started privately,
/// replayed to the end of the archive and queried; refused beside a running backup and on a volume too small for it.
/// </summary>
public sealed class DrillTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Drill_NewestBackupPlusArchivedRows_ExactRowCountsRtoAndNoShortfall_ScratchRemoved()
    {
        using var scratch = TestDirectory.Create();
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?>
            {
                ["Agent__Drills__ScratchDirectory"] = scratch.Path,
                ["Agent__Drills__CheckQuery"] = "select count(*) as rows, sum(n) as total from drill_rows",
            },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.ExecuteAsync("create table drill_rows as select generate_series(1, 1000) as n");
        var label = (await env.BackupAsync("full")).BackupLabel;
        // Rows only the archive holds: the drill must replay it to count them.
        await env.Postgres.ExecuteAsync("insert into drill_rows select generate_series(1001, 1234)");
        var segment = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(segment);

        var started = await env.Client.DrillAsync(new DrillRequest());
        var done = await env.WaitAsync(started);

        Assert.True(done.State == OperationState.Succeeded, $"{done.Error}\n{env.Agent.LogTail(40)}");
        var drill = done.Drill;
        Assert.Equal(["rows=1234", "total=761995"], drill.Check);
        Assert.Equal((label, 1), (drill.BackupLabel, drill.Repo));
        Assert.InRange(drill.RestoreSeconds, 0.05, 120);
        Assert.InRange(drill.ReplaySeconds, 0.05, 120);
        Assert.Equal(drill.RestoreSeconds + drill.ReplaySeconds, drill.RecoverySeconds, 3);
        Assert.False(drill.Shortfall, done.ToString());
        Assert.DoesNotContain(done.Warnings, w => w.Contains("Recovery stopped", StringComparison.Ordinal));
        Assert.Matches("^[0-9A-F]+/[0-9A-F]+$", drill.RecoveredLsn);
        Assert.True(string.CompareOrdinal(drill.RecoveredWal[8..], segment[8..]) >= 0, $"{drill.RecoveredWal} < {segment}");
        Assert.True(string.CompareOrdinal(drill.NewestArchivedWal, segment) >= 0, drill.NewestArchivedWal);
        Assert.NotNull(drill.RecoveredTime);
        Assert.Empty(Directory.GetFileSystemEntries(scratch.Path));
        Assert.Equal(1234, await env.Postgres.ScalarAsync<long>("select count(*) from drill_rows"));

        var shown = await env.CliAsync("operation", done.Id);
        Assert.True(shown.Succeeded, shown.ToString());
        output.WriteLine(shown.StandardOutput);
        Assert.Contains("recovery time", shown.StandardOutput);
        Assert.Contains("rows=1234", shown.StandardOutput);
        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
        Assert.Equal(1, MetricsTests.Value(text, "pgbackrest_drill_last_status", "repo=\"1\""));
        Assert.Equal(done.Finished.ToDateTimeOffset().ToUnixTimeSeconds(),
            (long)MetricsTests.Value(text, "pgbackrest_drill_last_success_timestamp_seconds", "repo=\"1\""));
        Assert.Equal(drill.RecoverySeconds, MetricsTests.Value(text, "pgbackrest_drill_last_recovery_seconds", "phase=\"total\""), 3);

        // The figures are kept with the operation history: an agent restart does not lose them.
        Assert.Equal(0, await env.Agent.StopAsync());
        await env.Agent.StartAsync();
        var afterRestart = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
        Assert.Equal(1, MetricsTests.Value(afterRestart, "pgbackrest_drill_last_status", "repo=\"1\""));
        Assert.Equal(drill.RecoverySeconds, MetricsTests.Value(afterRestart, "pgbackrest_drill_last_recovery_seconds", "phase=\"total\""), 3);
        Assert.Equal(drill.RestoreSeconds, MetricsTests.Value(afterRestart, "pgbackrest_drill_last_recovery_seconds", "phase=\"restore\""), 3);
        Assert.Equal(0, MetricsTests.Value(afterRestart, "pgbackrest_drill_last_shortfall", "repo=\"1\""));
        var reloaded = await env.Client.GetOperationAsync(new GetOperationRequest { Id = done.Id });
        Assert.Equal(drill.Check, reloaded.Drill.Check);
        Assert.Equal(drill.RecoveredLsn, reloaded.Drill.RecoveredLsn);
    }

    [Fact]
    public async Task Drill_AgentKilledWhileTheRestoredServerRuns_NextStartStopsItAndRemovesTheDirectory()
    {
        using var scratch = TestDirectory.Create();
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?>
            {
                ["Agent__Drills__ScratchDirectory"] = scratch.Path,
                // Holds the drill in its check, with the restored server running, long enough to kill the agent there.
                ["Agent__Drills__CheckQuery"] = "select pg_sleep(120)",
            },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.BackupAsync("full");

        var started = await env.Client.DrillAsync(new DrillRequest());
        await AgentTestExtensions.WaitUntilAsync(async () =>
            (await env.Client.GetOperationAsync(new GetOperationRequest { Id = started.Id })).Phase == "running the check query",
            TimeSpan.FromSeconds(120), () => $"the drill never reached its check query\n{env.Agent.LogTail(30)}");
        var directory = Assert.Single(Directory.GetDirectories(scratch.Path));
        var postmaster = int.Parse(File.ReadLines(Path.Combine(directory, "data", "postmaster.pid")).First());

        env.Agent.Kill();
        // Outside a container nothing else stops it: the restored server outlives the agent (pg_ctl detached it).
        Assert.True(Directory.Exists($"/proc/{postmaster}"), "the drill's server died with the agent: this test shows nothing");

        await env.Agent.StartAsync();
        await AgentTestExtensions.WaitUntilAsync(() => Task.FromResult(!Directory.Exists($"/proc/{postmaster}") && !Directory.Exists(directory)),
            TimeSpan.FromSeconds(60), () => $"the leftover drill is still there\n{env.Agent.LogTail(30)}");
        Assert.Empty(Directory.GetFileSystemEntries(scratch.Path));
        Assert.Contains("left by a restore drill that did not finish", env.Agent.LogTail(200));
        var interrupted = await env.Client.GetOperationAsync(new GetOperationRequest { Id = started.Id });
        Assert.Equal(OperationState.Failed, interrupted.State);
    }

    [Fact]
    public async Task Drill_ScratchVolumeTooSmall_RefusedWithNumbers_WhileBackupRuns_Aborted()
    {
        using var scratch = TestDirectory.Create();
        (await OsCommand.RunAsync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", scratch.Path])).EnsureSuccess();
        try
        {
            TestDirectory.ChownToPostgres(scratch.Path);
            await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
            {
                AgentSettings = new Dictionary<string, string?> { ["Agent__Drills__ScratchDirectory"] = scratch.Path },
            });
            await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
            await env.BackupAsync("full");
            var size = (await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Single().DatabaseSize;
            var free = new DriveInfo(scratch.Path).AvailableFreeSpace;

            var tooSmall = await Assert.ThrowsAsync<RpcException>(async () => await env.Client.DrillAsync(new DrillRequest()));
            Assert.Equal(StatusCode.FailedPrecondition, tooSmall.StatusCode);
            Assert.Contains($"has {free} bytes free", tooSmall.Status.Detail);
            Assert.Contains($"restores to {size} bytes", tooSmall.Status.Detail);
            var cli = await env.CliAsync("drill");
            Assert.Equal(1, cli.ExitCode);
            Assert.Contains($"{free} bytes free", cli.StandardError);

            var backup = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
            var busy = await Assert.ThrowsAsync<RpcException>(async () => await env.Client.DrillAsync(new DrillRequest()));
            Assert.Equal(StatusCode.Aborted, busy.StatusCode);
            Assert.Contains("full backup to repo1", busy.Status.Detail);
            Assert.Equal(OperationState.Succeeded, (await env.WaitAsync(backup)).State);
            Assert.DoesNotContain((await env.Client.ListOperationsAsync(new ListOperationsRequest())).Operations, o => o.Kind == OperationKind.Drill);
        }
        finally
        {
            await OsCommand.RunAsync("umount", [scratch.Path]);
        }
    }
}
