using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests.RestoreTests;

/// <summary>Restores into the live data directory after PostgreSQL was stopped; each test has its own environment.</summary>
public sealed class InPlaceTests(ITestOutputHelper output)
{
    private const int ArchivedRows = 1000;

    [Fact]
    public async Task StartRestore_InPlaceAfterFastStop_DeltaRestoreBringsBackEveryArchivedRow()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        await using var env = await PrepareAsync();
        await env.Postgres.StopAsync(ShutdownMode.Fast);

        var done = await RestoreSteps.RestoreAsync(env, new StartRestoreRequest());
        Assert.StartsWith("delta restore", done.Description);
        Assert.EndsWith("in place", done.Description);
        Assert.Equal(env.Postgres.DataDirectory, done.Restore.DataDirectory);

        await env.Postgres.StartAsync();
        await env.Postgres.WaitForRecoveryEndAsync(RestoreSteps.RecoveryTimeout);
        Assert.Equal(ArchivedRows + 2, await env.Postgres.ScalarAsync<long>("select count(*) from marker"));
        Assert.Equal(ArchivedRows, await env.Postgres.ScalarAsync<long>("select count(*) from marker where note like 'row-%'"));
        Assert.Equal(1, await env.Postgres.ScalarAsync<long>("select count(*) from marker where note = 'last-archived'"));
        output.WriteLine($"{done.Description}: {clock.Elapsed.TotalSeconds:0.0} s in all");
    }

    /// <summary>
    /// A row committed after the last WAL switch lives only in the current segment in pg_wal. A fast (or smart) stop
    /// switches WAL when archiving is on and lets the archiver push that segment before the postmaster exits, so the
    /// row is in the repository; an immediate stop (like a crash) does not. pgBackRest's restore empties pg_wal, so
    /// the agent sets never-archived WAL aside and puts it back: the row survives either way.
    /// </summary>
    [Theory]
    [InlineData(ShutdownMode.Fast, true)]
    [InlineData(ShutdownMode.Immediate, false)]
    public async Task StartRestore_InPlaceWithRowAfterLastSwitch_RowSurvivesEvenIfNeverArchived(ShutdownMode stop, bool archivedByStop)
    {
        await using var env = await PrepareAsync();
        await RestoreSteps.InsertMarkerAsync(env.Postgres, "unarchived-tail");
        var tailSegment = await env.Postgres.ScalarAsync<string>("select pg_walfile_name(pg_current_wal_lsn())");
        await env.Postgres.StopAsync(stop);
        var tailPath = Path.Combine(env.Postgres.DataDirectory, "pg_wal", tailSegment);
        Assert.True(File.Exists(tailPath), $"{tailSegment} should be in pg_wal after the stop");
        var tailArchived = Directory.EnumerateFiles(
            Path.Combine(env.Agent.RepositoryPath, "archive", env.Stanza), tailSegment + "*", SearchOption.AllDirectories).Any();

        var done = await RestoreSteps.RestoreAsync(env, new StartRestoreRequest());
        Assert.StartsWith("delta restore", done.Description);
        var tailKept = File.Exists(tailPath);

        await env.Postgres.StartAsync();
        await env.Postgres.WaitForRecoveryEndAsync(RestoreSteps.RecoveryTimeout);
        Assert.Equal(ArchivedRows, await env.Postgres.ScalarAsync<long>("select count(*) from marker where note like 'row-%'"));
        Assert.Equal(1, await env.Postgres.ScalarAsync<long>("select count(*) from marker where note = 'last-archived'"));
        var tailSurvived = await env.Postgres.ScalarAsync<long>("select count(*) from marker where note = 'unarchived-tail'") == 1;

        output.WriteLine($"stop -m {stop.ToString().ToLowerInvariant()}: the tail row's segment {tailSegment} was archived by the stop: {tailArchived}; " +
            $"still in pg_wal after the restore: {tailKept}; the tail row survived: {tailSurvived}");
        Assert.Equal(archivedByStop, tailArchived);
        Assert.Equal(!archivedByStop, tailKept);
        if (!archivedByStop)
        {
            Assert.Contains(done.Warnings, w => w.Contains("never been archived", StringComparison.Ordinal));
        }

        Assert.True(tailSurvived, "a committed row was lost by the in-place restore");
    }

    /// <summary>An environment with a backup, then <see cref="ArchivedRows"/> rows and 'last-archived', switched and archived.</summary>
    private static async Task<TestEnvironment> PrepareAsync()
    {
        var env = await TestEnvironment.CreateAsync();
        try
        {
            await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
            await env.Postgres.ExecuteAsync("create table marker (id bigserial primary key, note text not null)");
            await RestoreSteps.InsertMarkerAsync(env.Postgres, "pre-backup");
            await RestoreSteps.TakeFullBackupAsync(env);
            await env.Postgres.ExecuteAsync($"insert into marker (note) select 'row-' || i from generate_series(1, {ArchivedRows}) i");
            await RestoreSteps.InsertMarkerAsync(env.Postgres, "last-archived");
            await RestoreSteps.SwitchAndWaitArchivedAsync(env.Postgres);
            return env;
        }
        catch
        {
            await env.DisposeAsync();
            throw;
        }
    }
}
