using System.Text.Json;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests.RestoreTests;

public sealed class RefusalFixture : RestoreFixture
{
    /// <summary>Some data so that a restore takes a moment (the concurrent-restore test needs one to be running).</summary>
    protected override Task BeforeBackupAsync() => Env.Postgres.PgBenchInitAsync(scale: 3);

    protected override Task AfterBackupAsync() => RestoreSteps.SwitchAndWaitArchivedAsync(Env.Postgres);
}

/// <summary>Requests the agent refuses before pgBackRest runs (nothing is written), and GetRecoveryWindow.</summary>
public sealed class RefusalTests(RefusalFixture fixture, ITestOutputHelper output) : IClassFixture<RefusalFixture>
{
    private TestEnvironment Env => fixture.Env;

    [Fact]
    public async Task StartRestore_InPlaceWhilePostgresRuns_FailedPreconditionAndDataDirectoryUntouched()
    {
        var data = Env.Postgres.DataDirectory;
        // After a checkpoint nothing is dirty, so PostgreSQL itself does not write these files in the next moment.
        await Env.Postgres.ExecuteAsync("checkpoint");
        var before = Snapshot(data);

        var refused = await Assert.ThrowsAsync<RpcException>(() => Env.Client.StartRestoreAsync(new StartRestoreRequest()).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("PostgreSQL is running", refused.Status.Detail);
        Assert.Contains(data, refused.Status.Detail);

        Assert.Equal(before, Snapshot(data));
        Assert.True(Env.Postgres.IsRunning);
        Assert.Equal(1L, await Env.Postgres.ScalarAsync<long>("select count(*) from marker"));
        output.WriteLine(refused.Status.Detail);

        // Top-level entries (no backup.manifest or recovery.signal appeared) and the files PostgreSQL does not touch at rest.
        static IReadOnlyList<string> Snapshot(string data) =>
        [
            .. Directory.EnumerateFileSystemEntries(data).Select(Path.GetFileName).Order(StringComparer.Ordinal)!,
            .. RestoreSteps.Fingerprint(data, "PG_VERSION"),
            .. RestoreSteps.Fingerprint(data, "postgresql.conf"),
            .. RestoreSteps.Fingerprint(data, "postgresql.auto.conf"),
            .. RestoreSteps.Fingerprint(data, "global/pg_control"),
            .. RestoreSteps.Fingerprint(data, "base"),
        ];
    }

    public static TheoryData<string, string, string, StatusCode, string, bool> BadRequests => new()
    {
        // target type, target, set, expected code, expected text in the message, whether the message names the window
        { "time", "2999-01-01 00:00:00+00", "", StatusCode.InvalidArgument, "in the future", true },
        { "time", "2000-01-01 00:00:00+00", "", StatusCode.FailedPrecondition, "before the end of the oldest backup", true },
        { "time", "yesterday at noon", "", StatusCode.InvalidArgument, "not understood", false },
        { "time", "2026-13-45 25:61:00", "", StatusCode.InvalidArgument, "not understood", false },
        { "latest", "", "20000101-000000F", StatusCode.NotFound, "does not exist", false },
        { "latest", "", "not-a-label", StatusCode.InvalidArgument, "is not a backup label", false },
        { "bogus", "", "", StatusCode.InvalidArgument, "target_type 'bogus' is not valid", false },
        { "lsn", "xyz", "", StatusCode.InvalidArgument, "is not an LSN", false },
        { "xid", "12abc", "", StatusCode.InvalidArgument, "is not a transaction id", false },
        { "time", "", "", StatusCode.InvalidArgument, "needs a target", false },
        { "immediate", "0/3000000", "", StatusCode.InvalidArgument, "takes no target", false },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task StartRestore_BadRequest_RefusedWithCodeAndNothingWritten(
        string targetType, string target, string set, StatusCode expected, string text, bool namesWindow)
    {
        var directory = fixture.NewDataDirectory("refused");
        var refused = await Assert.ThrowsAsync<RpcException>(() => Env.Client.StartRestoreAsync(new StartRestoreRequest
        {
            TargetType = targetType,
            Target = target,
            Set = set,
            DataDirectory = directory,
        }).ResponseAsync);

        Assert.True(expected == refused.StatusCode, $"expected {expected}, got {refused.StatusCode}: {refused.Status.Detail}");
        Assert.Contains(text, refused.Status.Detail);
        Assert.False(Directory.Exists(directory), "a refused restore must not create its directory");
        if (namesWindow)
        {
            // The recoverable window: from the end of the oldest backup to the end of the archive.
            Assert.Contains($"can restore from", refused.Status.Detail);
            Assert.Contains($"end of backup {fixture.BackupLabel}", refused.Status.Detail);
            Assert.Contains("to the end of archived WAL (0000000100000000000000", refused.Status.Detail);
        }

        output.WriteLine($"{refused.StatusCode}: {refused.Status.Detail}");
    }

    /// <summary>
    /// Values that pass a loose check but break PostgreSQL or pgBackRest later (found by a drill with a Python client):
    /// each must be refused up front, with nothing written.
    /// </summary>
    [Theory]
    [InlineData("timeline 2 + newline", StatusCode.InvalidArgument, "target_timeline")]
    [InlineData("timeline 0", StatusCode.InvalidArgument, "target_timeline")]
    [InlineData("timeline over 32 bits", StatusCode.InvalidArgument, "target_timeline")]
    [InlineData("timeline non-ASCII digit", StatusCode.InvalidArgument, "target_timeline")]
    [InlineData("xid + newline", StatusCode.InvalidArgument, "is not a transaction id")]
    [InlineData("name over 63 bytes", StatusCode.InvalidArgument, "Restore point name")]
    [InlineData("set + newline", StatusCode.InvalidArgument, "is not a backup label")]
    [InlineData("directory is a file", StatusCode.FailedPrecondition, "is a file")]
    [InlineData("directory too long", StatusCode.InvalidArgument, "bytes long")]
    [InlineData("directory in the agent's log path", StatusCode.InvalidArgument, "overlaps pgBackRest's log path")]
    public async Task StartRestore_ValueThatWouldBreakLater_RefusedUpFront(string @case, StatusCode expected, string text)
    {
        var directory = fixture.NewDataDirectory("refused");
        var request = new StartRestoreRequest { TargetType = "latest", DataDirectory = directory };
        switch (@case)
        {
            case "timeline 2 + newline": request.TargetTimeline = "2\n"; break;
            case "timeline 0": request.TargetTimeline = "0"; break;
            case "timeline over 32 bits": request.TargetTimeline = "0x1FFFFFFFF"; break;
            case "timeline non-ASCII digit": request.TargetTimeline = "\u0662"; break;
            case "xid + newline": (request.TargetType, request.Target) = ("xid", "735\n1"); break;
            case "name over 63 bytes": (request.TargetType, request.Target) = ("name", new string('\u540d', 30)); break;
            case "set + newline": request.Set = $"{fixture.BackupLabel}\n"; break;
            case "directory is a file": request.DataDirectory = Env.Directory.WriteFile("a-file", ""); break;
            case "directory too long": request.DataDirectory = "/" + string.Join('/', Enumerable.Repeat(new string('d', 100), 20)); break;
            case "directory in the agent's log path": request.DataDirectory = Env.Directory.Combine("log/restore-here"); break;
            default: throw new ArgumentOutOfRangeException(nameof(@case), @case, null);
        }

        var refused = await Assert.ThrowsAsync<RpcException>(() => Env.Client.StartRestoreAsync(request).ResponseAsync);
        Assert.True(expected == refused.StatusCode, $"expected {expected}, got {refused.StatusCode}: {refused.Status.Detail}");
        Assert.Contains(text, refused.Status.Detail);
        Assert.False(Directory.Exists(directory), "a refused restore must not create its directory");
        Assert.False(Directory.Exists(Env.Directory.Combine("log/restore-here")), "a refused restore wrote into the agent's log path");
    }

    [Fact]
    public async Task StartRestore_TimeInTheSecondTheOldestBackupEnded_FailedPreconditionInsteadOfPgBackRestError75()
    {
        // pgBackRest records the stop to the second and needs a backup that ended before the target's second.
        var stop = (await Env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Single(b => b.Label == fixture.BackupLabel).Stopped;
        var target = stop.ToDateTime().AddMilliseconds(999).ToString("yyyy-MM-dd HH:mm:ss.ffffff", System.Globalization.CultureInfo.InvariantCulture) + "+00";
        var directory = fixture.NewDataDirectory("same-second");

        var refused = await Assert.ThrowsAsync<RpcException>(() => Env.Client.StartRestoreAsync(new StartRestoreRequest
        {
            TargetType = "time",
            Target = target,
            DataDirectory = directory,
        }).ResponseAsync);

        Assert.True(refused.StatusCode == StatusCode.FailedPrecondition, $"{refused.StatusCode}: {refused.Status.Detail}");
        Assert.Contains($"falls in the second the oldest backup {fixture.BackupLabel} ended", refused.Status.Detail);
        Assert.Contains($"Pick a time at or after {stop.ToDateTime().AddSeconds(1):yyyy-MM-dd HH:mm:ss}+00", refused.Status.Detail);
        Assert.False(Directory.Exists(directory));
        output.WriteLine(refused.Status.Detail);
    }

    [Fact]
    public async Task GetRecoveryWindow_AfterBackupAndArchiving_EarliestIsOldestBackupStopAndLatestIsArchiveMax()
    {
        await RestoreSteps.SwitchAndWaitArchivedAsync(Env.Postgres);

        var reply = await Env.Client.GetRecoveryWindowAsync(new GetRecoveryWindowRequest());
        var window = Assert.Single(reply.Windows);
        var backups = (await Env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups;
        var oldest = backups.MinBy(b => b.Stopped.ToDateTimeOffset())!;
        Assert.Equal(fixture.BackupLabel, oldest.Label);

        var info = (await Env.PgBackRestAsync("info", "--output=json")).EnsureSuccess();
        using var json = JsonDocument.Parse(info.StandardOutput);
        var archiveMax = json.RootElement[0].GetProperty("archive")[0].GetProperty("max").GetString();
        var lastArchived = await Env.Postgres.ScalarAsync<string>("select last_archived_wal from pg_stat_archiver");

        Assert.Equal(1, window.Repo);
        Assert.Equal(oldest.Label, window.EarliestBackup);
        Assert.Equal(oldest.Stopped, window.EarliestTime);
        Assert.Equal(oldest.LsnStop, window.EarliestLsn);
        Assert.Equal(archiveMax, window.LatestWal);
        // The archiver's last file is that segment, or the backup's history file named after it (archived right after).
        Assert.StartsWith(window.LatestWal, lastArchived);
        Assert.NotNull(window.LatestTime);
        output.WriteLine(window.ToString());
    }

    [Fact]
    public async Task StartRestore_WhileAnotherRestoreRuns_SecondIsAborted()
    {
        var first = fixture.NewDataDirectory("first");
        var second = fixture.NewDataDirectory("second");

        // Both are planned at the same moment; the first to reach the exclusive lane runs, the other is refused.
        var attempts = await Task.WhenAll(
            TryStartAsync(new StartRestoreRequest { TargetType = "immediate", DataDirectory = first }),
            TryStartAsync(new StartRestoreRequest { TargetType = "immediate", DataDirectory = second }));

        var started = attempts.Where(a => a.Operation is not null).Select(a => a.Operation!).ToList();
        var refused = attempts.Where(a => a.Error is not null).Select(a => a.Error!).ToList();
        try
        {
            var running = Assert.Single(started);
            var aborted = Assert.Single(refused);
            Assert.True(aborted.StatusCode == StatusCode.Aborted, $"{aborted.StatusCode}: {aborted.Status.Detail}");
            Assert.Contains(running.Id, aborted.Status.Detail);
            output.WriteLine(aborted.Status.Detail);
        }
        finally
        {
            foreach (var operation in started)
            {
                RestoreSteps.AssertSucceeded(Env, await Env.WaitAsync(operation, RestoreSteps.OperationTimeout));
            }

            foreach (var directory in new[] { first, second }.Where(Directory.Exists))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    private async Task<(Operation? Operation, RpcException? Error)> TryStartAsync(StartRestoreRequest request)
    {
        try
        {
            return (await Env.Client.StartRestoreAsync(request), null);
        }
        catch (RpcException ex)
        {
            return (null, ex);
        }
    }
}
