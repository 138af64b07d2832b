using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// A hole in the archive, found from the archive itself: pgBackRest's check passes with one and a restore to latest
/// stops silently at it, so the agent's check, recovery window and metrics must say so, and clear once it is filled.
/// </summary>
public sealed class ArchiveContinuityTests
{
    [Fact]
    public async Task ArchiveGap_OneSegmentRemoved_CheckFailsWindowEndsBeforeItMetricCountsIt_PutBackClearsAll()
    {
        await using var env = await TestEnvironment.CreateAsync();
        var segments = await BackupAndArchiveThreeSegmentsAsync(env);

        var missing = segments[1];
        var file = ArchivedFile(env, missing);
        var aside = Path.Combine(env.Directory.Path, Path.GetFileName(file));
        File.Move(file, aside);

        var check = await env.Client.CheckAsync(new CheckRequest());
        Assert.False(check.Ok, env.Agent.LogTail(30));
        var repo = Assert.Single(check.Repositories);
        Assert.False(repo.Ok);
        Assert.Contains($"1 WAL segment missing ({missing})", repo.Message);
        Assert.Contains($"after {segments[0]} was archived", repo.Message);
        Assert.Matches(@"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", repo.Message);
        var cli = await env.CliAsync("check");
        Assert.NotEqual(0, cli.ExitCode);
        Assert.Contains(missing, cli.StandardOutput);

        var window = Assert.Single((await env.Client.GetRecoveryWindowAsync(new GetRecoveryWindowRequest())).Windows);
        Assert.Equal(segments[0], window.LatestWal);
        Assert.Equal(missing, window.Gap.FirstMissing);
        Assert.Equal(1, window.MissingSegments);
        Assert.Equal(1, await MissingSegmentsMetricAsync(env));
        var status = await env.Client.GetStatusAsync(new GetStatusRequest());
        Assert.Equal(1, status.Pgbackrest.Repositories[0].ArchiveContinuity.MissingSegments);
        Assert.Contains(status.Warnings, w => w.Contains(missing, StringComparison.Ordinal));

        File.Move(aside, file);

        check = await env.Client.CheckAsync(new CheckRequest());
        Assert.True(check.Ok, check.ToString());
        window = Assert.Single((await env.Client.GetRecoveryWindowAsync(new GetRecoveryWindowRequest())).Windows);
        Assert.Null(window.Gap);
        Assert.Equal(0, window.MissingSegments);
        Assert.True(string.CompareOrdinal(window.LatestWal, segments[2]) >= 0, window.LatestWal);
        Assert.Equal(0, await MissingSegmentsMetricAsync(env));
    }

    [Fact]
    public async Task RestoreToLatest_ArchiveGap_CopyStartedByCaller_StatusReportsWhereRecoveryStoppedAsShortfall()
    {
        await using var env = await TestEnvironment.CreateAsync();
        var segments = await BackupAndArchiveThreeSegmentsAsync(env);

        File.Delete(ArchivedFile(env, segments[1]));
        var directory = env.Directory.Combine("copy");
        var port = FreePort.Next();
        var restore = await env.WaitAsync(await env.Client.StartRestoreAsync(new StartRestoreRequest { DataDirectory = directory, Port = port }));
        Assert.Equal(OperationState.Succeeded, restore.State);

        // The caller starts the copy: recovery replays up to the gap, then promotes without a word.
        await using var copy = PostgresCluster.FromDataDirectory(env.Directory, directory, port);
        await copy.StartAsync();
        RecoveryEnd? end = null;
        await AgentTestExtensions.WaitUntilAsync(async () =>
        {
            end = (await env.Client.GetStatusAsync(new GetStatusRequest())).LastRecoveryEnd;
            return end?.OperationId == restore.Id;
        }, TimeSpan.FromSeconds(60), () => $"no recovery end reported for {restore.Id}\n{copy.LogTail(20)}\n{env.Agent.LogTail(20)}");

        Assert.True(end!.Shortfall, end.ToString());
        Assert.True(string.CompareOrdinal(end.Segment, segments[2]) < 0, end.ToString());
        Assert.True(string.CompareOrdinal(end.NewestArchivedWal, segments[2]) >= 0, end.ToString());
        Assert.Matches("^[0-9A-F]+/[0-9A-F]+$", end.Lsn);
        var status = await env.Client.GetStatusAsync(new GetStatusRequest());
        Assert.Contains(status.Warnings, w => w.Contains($"before repo1's newest archived segment {end.NewestArchivedWal}", StringComparison.Ordinal));
    }

    /// <summary>Stanza, a full backup, then three segments with data in each, archived: the segments' names.</summary>
    private static async Task<List<string>> BackupAndArchiveThreeSegmentsAsync(TestEnvironment env)
    {
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.BackupAsync("full");
        var segments = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            await env.Postgres.ExecuteAsync($"create table if not exists t{i} as select generate_series(1, 1000) as n");
            segments.Add(await env.Postgres.SwitchWalAsync());
            await env.Postgres.WaitForArchivedAsync(segments[^1]);
        }

        return segments;
    }

    /// <summary>The segment's file in the posix repo1 ("&lt;segment&gt;-&lt;sha1&gt;.&lt;ext&gt;" below its log id's directory).</summary>
    internal static string ArchivedFile(TestEnvironment env, string segment)
    {
        var archiveDirectory = Directory.GetDirectories(Path.Combine(env.Agent.RepositoryPath, "archive", env.Stanza)).Single();
        return Directory.GetFiles(Path.Combine(archiveDirectory, segment[..16]), segment + "-*").Single();
    }

    private static async Task<double> MissingSegmentsMetricAsync(TestEnvironment env)
    {
        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
        return MetricsTests.Value(text, "pgbackrest_archive_missing_segments", "repo=\"1\"");
    }
}
