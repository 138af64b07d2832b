using System.Globalization;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests.RestoreTests;

/// <summary>
/// After the backup: pairs of marker rows around each kind of target, each insert its own transaction, then a WAL
/// switch archived. Every test restores into its own new directory and expects exactly the rows up to its target.
/// </summary>
public sealed class PitrFixture : RestoreFixture
{
    public static readonly string[] AllMarkers =
    [
        "pre-backup",
        "time-before", "time-after",
        "xid-boundary", "xid-after",
        "lsn-before", "lsn-after",
        "name-before", "name-after",
    ];

    /// <summary>'yyyy-MM-dd HH:mm:ss.ffffff+00', read from clock_timestamp() between 'time-before' and 'time-after'.</summary>
    public string TargetTime { get; private set; } = "";

    /// <summary>txid_current() of the transaction that inserted 'xid-boundary'.</summary>
    public string TargetXid { get; private set; } = "";

    /// <summary>pg_current_wal_lsn() after 'lsn-before' committed.</summary>
    public string TargetLsn { get; private set; } = "";

    public const string RestorePoint = "rp1";

    protected override async Task AfterBackupAsync()
    {
        var postgres = Env.Postgres;
        // pgBackRest picks a backup for a time target only if the backup's stop (whole seconds) is before the target's
        // second: start the markers in a later second than the backup's end.
        var stop = (await Env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Single().Stopped.ToDateTime();
        await AgentTestExtensions.WaitUntilAsync(
            async () => await postgres.ScalarAsync<DateTime>("select clock_timestamp()") >= stop.AddSeconds(1),
            TimeSpan.FromSeconds(5), () => $"clock_timestamp() did not pass {stop:O} + 1 s");
        await RestoreSteps.InsertMarkerAsync(postgres, "time-before");
        await WaitForClockToPassAsync(postgres);
        TargetTime = await postgres.ScalarAsync<string>(
            "select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'");
        await WaitForClockToPassAsync(postgres);
        await RestoreSteps.InsertMarkerAsync(postgres, "time-after");

        TargetXid = (await postgres.ScalarAsync<long>("insert into marker (note) values ('xid-boundary') returning txid_current()"))
            .ToString(CultureInfo.InvariantCulture);
        await RestoreSteps.InsertMarkerAsync(postgres, "xid-after");

        await RestoreSteps.InsertMarkerAsync(postgres, "lsn-before");
        TargetLsn = await postgres.ScalarAsync<string>("select pg_current_wal_lsn()::text");
        await RestoreSteps.InsertMarkerAsync(postgres, "lsn-after");

        await RestoreSteps.InsertMarkerAsync(postgres, "name-before");
        await postgres.ScalarAsync<string>($"select pg_create_restore_point('{RestorePoint}')::text");
        await RestoreSteps.InsertMarkerAsync(postgres, "name-after");

        await RestoreSteps.SwitchAndWaitArchivedAsync(postgres);
        Assert.Equal(AllMarkers, await RestoreSteps.MarkersAsync(postgres));
    }

    /// <summary>Makes sure the next clock_timestamp() is a few milliseconds later than now, without a blind sleep.</summary>
    private static async Task WaitForClockToPassAsync(PostgresCluster postgres)
    {
        var start = await postgres.ScalarAsync<DateTime>("select clock_timestamp()");
        await AgentTestExtensions.WaitUntilAsync(
            async () => await postgres.ScalarAsync<DateTime>("select clock_timestamp()") > start.AddMilliseconds(10),
            TimeSpan.FromSeconds(5), () => "clock_timestamp() did not advance");
    }
}

public sealed class PitrTests(PitrFixture fixture, ITestOutputHelper output) : IClassFixture<PitrFixture>
{
    private TestEnvironment Env => fixture.Env;

    [Fact]
    public async Task StartRestore_TimeBetweenMarkers_RestoresRowsBeforeTargetOnly()
    {
        await AssertRestoresAsync(
            new StartRestoreRequest { TargetType = "time", Target = fixture.TargetTime },
            ["pre-backup", "time-before"]);
    }

    [Fact]
    public async Task StartRestore_XidOfBoundaryTransaction_IncludesItAndExcludesNext()
    {
        await AssertRestoresAsync(
            new StartRestoreRequest { TargetType = "xid", Target = fixture.TargetXid, TargetExclusive = false },
            ["pre-backup", "time-before", "time-after", "xid-boundary"]);
    }

    [Fact]
    public async Task StartRestore_LsnAfterCommit_RestoresRowsBeforeTargetOnly()
    {
        await AssertRestoresAsync(
            new StartRestoreRequest { TargetType = "lsn", Target = fixture.TargetLsn },
            ["pre-backup", "time-before", "time-after", "xid-boundary", "xid-after", "lsn-before"]);
    }

    [Fact]
    public async Task StartRestore_NamedRestorePoint_RestoresRowsBeforeItOnly()
    {
        await AssertRestoresAsync(
            new StartRestoreRequest { TargetType = "name", Target = PitrFixture.RestorePoint },
            ["pre-backup", "time-before", "time-after", "xid-boundary", "xid-after", "lsn-before", "lsn-after", "name-before"]);
    }

    [Fact]
    public async Task StartRestore_Immediate_RestoresOnlyRowsFromBeforeTheBackup()
    {
        await AssertRestoresAsync(new StartRestoreRequest { TargetType = "immediate" }, ["pre-backup"]);
    }

    private async Task AssertRestoresAsync(StartRestoreRequest request, string[] expected)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var directory = fixture.NewDataDirectory($"pitr-{request.TargetType}");
        var port = FreePort.Next();
        request.DataDirectory = directory;
        request.Port = port;
        request.TargetAction = "promote";

        var done = await RestoreSteps.RestoreAsync(Env, request);
        Assert.Equal(directory, done.Restore.DataDirectory);
        Assert.Equal(fixture.BackupLabel, done.Restore.BackupLabel);
        var restored = clock.Elapsed;

        await using var copy = await RestoreSteps.StartCopyAsync(Env, directory, port);
        await copy.Cluster.WaitForRecoveryEndAsync(RestoreSteps.RecoveryTimeout);
        var markers = await RestoreSteps.MarkersAsync(copy.Cluster);
        Assert.True(expected.SequenceEqual(markers),
            $"{request.TargetType} {request.Target}: expected [{string.Join(", ", expected)}], restored [{string.Join(", ", markers)}]\n" +
            $"--- {copy.Cluster.LogFile} (tail)\n{copy.Cluster.LogTail()}");

        // Promoted onto a new timeline; the live cluster is untouched.
        Assert.Equal("00000002", (await copy.Cluster.ScalarAsync<string>("select pg_walfile_name(pg_current_wal_lsn())"))[..8]);
        Assert.Equal(PitrFixture.AllMarkers, await RestoreSteps.MarkersAsync(Env.Postgres));
        output.WriteLine($"{done.Description}: restore {restored.TotalSeconds:0.0} s, restored and recovered {clock.Elapsed.TotalSeconds:0.0} s " +
            $"(fixture set-up {fixture.SetupTime.TotalSeconds:0.0} s)");
    }
}
