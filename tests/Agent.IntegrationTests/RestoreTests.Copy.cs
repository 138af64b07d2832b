using System.Globalization;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests.RestoreTests;

public sealed class CopyFixture : RestoreFixture
{
    protected override async Task AfterBackupAsync()
    {
        await RestoreSteps.InsertMarkerAsync(Env.Postgres, "after-backup");
        await RestoreSteps.SwitchAndWaitArchivedAsync(Env.Postgres);
    }
}

/// <summary>Restores into a new directory that then runs beside the live cluster.</summary>
public sealed class CopyTests(CopyFixture fixture, ITestOutputHelper output) : IClassFixture<CopyFixture>
{
    private TestEnvironment Env => fixture.Env;

    [Fact]
    public async Task StartRestore_NewDirectoryWithPort_CopyRunsOnThatPortAndPushesNothingToTheRepository()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var directory = fixture.NewDataDirectory("copy");
        var port = FreePort.Next();
        // Everything the live cluster committed so far is archived (each test switches WAL and waits).
        var liveMarkers = await RestoreSteps.MarkersAsync(Env.Postgres);
        // pgBackRest's restore deletes the stanza's archive spool; the live cluster's (push acknowledgements a
        // running archive-push waits for) must survive a copy's restore.
        var liveSpool = Path.Combine(Env.Agent.SpoolPath, "archive", Env.Stanza);
        var spoolSentinel = Path.Combine(liveSpool, "sentinel-of-the-live-cluster");
        await File.WriteAllTextAsync(spoolSentinel, "");
        var done = await RestoreSteps.RestoreAsync(Env, new StartRestoreRequest { DataDirectory = directory, Port = port });
        Assert.Contains(directory, done.Restore.NextStep);
        Assert.True(File.Exists(spoolSentinel), $"restoring a copy deleted the live cluster's archive spool {liveSpool}");
        var copySpools = Path.Combine(Env.Agent.SpoolPath, "restore");
        Assert.False(Directory.Exists(copySpools) && Directory.EnumerateFileSystemEntries(copySpools).Any(), "the copy's spool was left behind");

        var autoConf = await File.ReadAllTextAsync(Path.Combine(directory, "postgresql.auto.conf"));
        Assert.Contains($"port = '{port}'", autoConf);
        Assert.Contains("archive_mode = 'off'", autoConf);

        // Started without -p: the port must come from what the restore wrote (the copied postgresql.conf still
        // names the live cluster's port, whose socket is taken, so a missing port setting fails the start).
        var log = Env.Directory.Combine($"postgresql-{Path.GetFileName(directory)}.log");
        (await OsCommand.RunAsPostgresAsync(
            HarnessPaths.PostgresTool("pg_ctl"), ["-D", directory, "-l", log, "-w", "-t", "60", "start"])).EnsureSuccess();
        await using var copy = new RestoredCopy(PostgresCluster.FromDataDirectory(Env.Directory, directory, port));
        Assert.Equal(port.ToString(CultureInfo.InvariantCulture), await copy.Cluster.ScalarAsync<string>("show port"));

        // latest: replays the archive to its end, then promotes itself onto timeline 2.
        await copy.Cluster.WaitForRecoveryEndAsync(RestoreSteps.RecoveryTimeout);
        Assert.Equal(liveMarkers, await RestoreSteps.MarkersAsync(copy.Cluster));
        Assert.Equal("00000002", (await copy.Cluster.ScalarAsync<string>("select pg_walfile_name(pg_current_wal_lsn())"))[..8]);
        Assert.Equal("off", await copy.Cluster.ScalarAsync<string>("show archive_mode"));

        // Writes and WAL switches in the copy (separate statements: a switch in the inserting transaction would not
        // complete the segment holding the commit).
        for (var i = 0; i < 2; i++)
        {
            await RestoreSteps.InsertMarkerAsync(copy.Cluster, $"copy-{i}");
            await copy.Cluster.SwitchWalAsync();
        }

        // Meanwhile the live cluster keeps running and archiving; once its newest segment is in the repository,
        // the copy's segments would have been too if the copy archived.
        await RestoreSteps.InsertMarkerAsync(Env.Postgres, "live-after-copy");
        await RestoreSteps.SwitchAndWaitArchivedAsync(Env.Postgres);
        Assert.False(await Env.Postgres.ScalarAsync<bool>("select pg_is_in_recovery()"));
        Assert.Equal(0L, await Env.Postgres.ScalarAsync<long>("select failed_count from pg_stat_archiver"));

        Assert.Equal(0L, await copy.Cluster.ScalarAsync<long>("select archived_count + failed_count from pg_stat_archiver"));
        var archive = Path.Combine(Env.Agent.RepositoryPath, "archive", Env.Stanza);
        var files = Directory.EnumerateFiles(archive, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();
        Assert.Contains(files, f => f!.StartsWith("00000001", StringComparison.Ordinal));
        Assert.DoesNotContain(files, f => f!.StartsWith("00000002", StringComparison.Ordinal));
        output.WriteLine($"{done.Description}: {clock.Elapsed.TotalSeconds:0.0} s; archive holds {files.Count} files, none of timeline 2");
    }

    /// <summary>
    /// Regression test for a bug outside Restore/. With archive-async=y (the agent's default) the agent runs the live
    /// primary's archive-push and a restored standby's archive-get with one lock path and stanza, and pgBackRest's async
    /// push and async get take the same lock (&lt;stanza&gt;-archive.lock). Each foreground takes the lock, releases it and
    /// forks a child that takes it again; when the other side grabs it in between, the child dies with error 50 and the
    /// foreground waits out archive-timeout (60 s). Seen both ways: the standby stops replaying, and (worse) the
    /// primary's archive_command stalls for a minute. Fails about two runs in three today; passed 3/3 with the fix
    /// (archive-get run with --no-archive-async in ArchiveService.GetAsync). Unskip once that is in.
    /// </summary>
    [Fact]
    public async Task StartRestore_StandbyBesideArchivingPrimary_KeepsUpWithEveryArchivedSegment()
    {
        await using var replica = await StandbyTests.StartStandbyAsync(fixture, output);

        // The primary completes a segment every ~100 ms for 8 s while the standby fetches them: many pushes meet many gets.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var segments = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(8))
        {
            await RestoreSteps.InsertMarkerAsync(Env.Postgres, $"burst-{segments++}");
            await Env.Postgres.SwitchWalAsync();
            await Task.Delay(TimeSpan.FromMilliseconds(100));
        }

        await StandbyTests.InsertSwitchAndWaitReplayedAsync(Env, replica, $"after-burst-{Guid.NewGuid():N}", TimeSpan.FromSeconds(20));
        output.WriteLine($"{segments} segments pushed and replayed in {clock.Elapsed.TotalSeconds:0.0} s");

        // A collision that happened not to stall this run still shows in pgBackRest's logs.
        foreach (var log in new[] { "archive-get-async", "archive-push-async" })
        {
            var tail = Env.Directory.Tail($"log/{Env.Stanza}-{log}.log", 10_000);
            Assert.False(tail.Contains("[050]", StringComparison.Ordinal), $"{log}: pgBackRest could not take the archive lock:\n{tail}");
        }
    }
}

/// <summary>A standby restored beside the archiving primary, with the agent's default (async) archiving.</summary>
public sealed class StandbyFixture : RestoreFixture
{
    protected override async Task AfterBackupAsync()
    {
        await RestoreSteps.InsertMarkerAsync(Env.Postgres, "after-backup");
        await RestoreSteps.SwitchAndWaitArchivedAsync(Env.Postgres);
    }
}

public sealed class StandbyTests(StandbyFixture fixture, ITestOutputHelper output) : IClassFixture<StandbyFixture>
{
    [Fact]
    public async Task StartRestore_Standby_ReplicaStaysInRecoveryAndReplaysNewlyArchivedWal()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var replica = await StartStandbyAsync(fixture, output);
        var started = clock.Elapsed;

        for (var cycle = 0; cycle < 3; cycle++)
        {
            await InsertSwitchAndWaitReplayedAsync(fixture.Env, replica, $"standby-probe-{cycle}-{Guid.NewGuid():N}", TimeSpan.FromSeconds(30));
        }

        Assert.True(await replica.Cluster.ScalarAsync<bool>("select pg_is_in_recovery()"));
        output.WriteLine($"standby started after {started.TotalSeconds:0.0} s, replayed three new segments after {clock.Elapsed.TotalSeconds:0.0} s");
    }

    /// <summary>Restores type=standby into a new directory and starts it; it must come up in recovery.</summary>
    internal static async Task<RestoredCopy> StartStandbyAsync(RestoreFixture fixture, ITestOutputHelper output)
    {
        var env = fixture.Env;
        var directory = fixture.NewDataDirectory("standby");
        var port = FreePort.Next();
        var done = await RestoreSteps.RestoreAsync(env, new StartRestoreRequest { TargetType = "standby", DataDirectory = directory, Port = port });
        Assert.True(File.Exists(Path.Combine(directory, "standby.signal")), "type=standby must write standby.signal");
        var autoConf = Path.Combine(directory, "postgresql.auto.conf");
        Assert.Contains("restore_command = ", await File.ReadAllTextAsync(autoConf));
        // Test speed only: retry a missing segment every second instead of every 5 s.
        await File.AppendAllTextAsync(autoConf, "wal_retrieve_retry_interval = '1s'\n");
        output.WriteLine(done.Description);

        var replica = await RestoreSteps.StartCopyAsync(env, directory, port);
        try
        {
            Assert.True(await replica.Cluster.ScalarAsync<bool>("select pg_is_in_recovery()"));
            // What was archived before the restore is replayed too.
            Assert.Contains("after-backup", await RestoreSteps.MarkersAsync(replica.Cluster));
            return replica;
        }
        catch
        {
            await replica.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Inserts <paramref name="probe"/> on the primary, switches WAL and waits until it is archived, then polls the
    /// standby until it replayed the row (it fetches the segment via restore_command → archive client → agent).
    /// </summary>
    internal static async Task InsertSwitchAndWaitReplayedAsync(TestEnvironment env, RestoredCopy replica, string probe, TimeSpan timeout)
    {
        await RestoreSteps.InsertMarkerAsync(env.Postgres, probe);
        await RestoreSteps.SwitchAndWaitArchivedAsync(env.Postgres);
        await AgentTestExtensions.WaitUntilAsync(
            async () => await replica.Cluster.ScalarAsync<long>($"select count(*) from marker where note = '{probe}'") == 1,
            timeout,
            () => $"the standby did not replay '{probe}'.\n--- {replica.Cluster.LogFile} (tail)\n{replica.Cluster.LogTail(15)}\n" +
                $"--- pgBackRest archive-get-async log (tail)\n{env.Directory.Tail($"log/{env.Stanza}-archive-get-async.log", 8)}");
    }
}
