using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.IntegrationTests.Harness.Emulators;
using Backrest.Agent.V1;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// Archive continuity read with repo-ls from every kind of repository the agent renders: an encrypted posix one and
/// one in each object-store emulator, all four beside one cluster. Each loses a different segment, deleted in the
/// store itself: each repository's check must name its own, and only its own. pgBackRest's verify, run on the Azure
/// one, passes with the hole and fails on a damaged segment.
/// </summary>
[Collection(StorageEmulatorsCollection.Name)]
public sealed class ArchiveContinuityKindTests(StorageEmulators emulators, ITestOutputHelper output)
{
    private const int Repositories = 4;

    [Fact]
    public Task ArchiveGap_EncryptedPosixS3GcsAzure_EachCheckNamesItsOwnMissingSegment_VerifyOnAzureFindsADamagedSegment() => output.OnFailureAsync(emulators.LogTails, async () =>
    {
        // repo1 posix encrypted (the harness's directory), repo2 s3, repo3 gcs, repo4 azure.
        using var secrets = TestDirectory.Create();
        var (settings, stores) = EncryptedPosixAnd(secrets, emulators.S3, emulators.Gcs, emulators.Azure);
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = settings });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        for (var repo = 1; repo <= Repositories; repo++)
        {
            await env.BackupAsync("full", repo);
        }

        // Six segments after the backups: repo r loses segment r, so every gap has archived segments on both sides.
        var segments = await ArchiveSegmentsAsync(env, 6);

        var healthy = await env.Client.CheckAsync(new CheckRequest());
        Assert.True(healthy.Ok, healthy + "\n" + env.Agent.LogTail(30));
        var windows = (await env.Client.GetRecoveryWindowAsync(new GetRecoveryWindowRequest())).Windows;
        Assert.Equal(Repositories, windows.Count);
        Assert.All(windows, w => Assert.Equal((0L, (ArchiveGap?)null), (w.MissingSegments, w.Gap)));
        Assert.All(windows, w => Assert.True(string.CompareOrdinal(w.LatestWal, segments[^1]) >= 0, w.ToString()));

        var verify = await VerifyAzureAsync(env);
        Assert.True((verify.Ok, verify.Errors) == (true, 0L), verify.ToString());
        // On s3rver verify finds no archive and prints "status: ok": the agent does not call that proof of the WAL.
        var s3 = await VerifyAsync(env, 2);
        Assert.False(s3.Ok, s3.ToString());
        Assert.Equal(0, s3.Errors);
        Assert.Matches("^repo2: verify checked no WAL segment, yet the archive holds segments up to [0-9A-F]{24}: ", s3.Description);

        // The encrypted repository really is: pgBackRest's files there are OpenSSL-salted, though their names are plain.
        var encrypted = ArchiveContinuityTests.ArchivedFile(env, segments[1]);
        Assert.Equal("Salted__"u8.ToArray(), File.ReadAllBytes(encrypted)[..8]);
        File.Delete(encrypted);
        for (var repo = 2; repo <= Repositories; repo++)
        {
            await DeleteArchivedAsync(env, stores[repo - 2], segments[repo]);
        }

        var check = await env.Client.CheckAsync(new CheckRequest());
        Assert.False(check.Ok, env.Agent.LogTail(30));
        var metrics = await MetricsTextAsync(env);
        windows = (await env.Client.GetRecoveryWindowAsync(new GetRecoveryWindowRequest())).Windows;
        for (var repo = 1; repo <= Repositories; repo++)
        {
            var missing = segments[repo];
            var result = check.Repositories.Single(r => r.Repo == repo);
            Assert.False(result.Ok, result.ToString());
            Assert.Contains($"1 WAL segment missing ({missing})", result.Message);
            Assert.Contains($"after {segments[repo - 1]} was archived", result.Message);
            Assert.DoesNotContain(segments.Where((_, i) => i != repo), s => result.Message.Contains($"({s})", StringComparison.Ordinal));

            var window = windows.Single(w => w.Repo == repo);
            Assert.Equal((segments[repo - 1], missing, 1L), (window.LatestWal, window.Gap.FirstMissing, window.MissingSegments));
            Assert.Equal(1, MetricsTests.Value(metrics, "pgbackrest_archive_missing_segments", $"repo=\"{repo}\""));
        }

        var cli = await env.CliAsync("check");
        Assert.NotEqual(0, cli.ExitCode);
        Assert.All(segments[1..5], s => Assert.Contains(s, cli.StandardOutput));

        // Verify checks what each archived file holds, not whether the archive is continuous: the hole alone passes it
        // (pgBackRest 2.45), a segment holding another's content does not.
        verify = await VerifyAzureAsync(env);
        Assert.True(verify.Ok, verify.ToString());
        var (azure, azurePath) = stores[2];
        var archived = await azure.ListObjectsAsync($"{azurePath.TrimStart('/')}/archive/{env.Stanza}/");
        await ((Azurite)azure).CopyObjectAsync(Named(archived, segments[3]), Named(archived, segments[5]));
        verify = await VerifyAzureAsync(env);
        Assert.False(verify.Ok, verify.ToString());
        var finding = Assert.Single(verify.Findings);
        Assert.Equal(("archive", 1L), (finding.Kind, finding.Checked - finding.Valid));
        Assert.Contains("checksum invalid: 1", finding.Details);
    });

    [Fact]
    public Task ArchiveGap_AfterTimelineSwitch_EncryptedPosixAndS3_HistoryFollowedAndGapOnNewTimelineNamed() => output.OnFailureAsync(emulators.LogTails, async () =>
    {
        // repo1 posix encrypted, repo2 s3: the new timeline's history file is read back with repo-get from each.
        using var secrets = TestDirectory.Create();
        var (settings, stores) = EncryptedPosixAnd(secrets, emulators.S3);
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = settings });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.BackupAsync("full", repo: 1);
        await env.BackupAsync("full", repo: 2);
        var before = await ArchiveSegmentsAsync(env, 2);

        // An in-place restore to latest replays the archive and promotes: timeline 2, its history file archived.
        await env.Postgres.StopAsync(ShutdownMode.Fast);
        await RestoreTests.RestoreSteps.RestoreAsync(env, new StartRestoreRequest());
        await env.Postgres.StartAsync();
        await env.Postgres.WaitForRecoveryEndAsync(RestoreTests.RestoreSteps.RecoveryTimeout);
        var after = await ArchiveSegmentsAsync(env, 3);
        Assert.All(after, s => Assert.StartsWith("00000002", s));
        var history = Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(ArchiveContinuityTests.ArchivedFile(env, before[0])))!, "00000002.history");
        Assert.Equal("Salted__"u8.ToArray(), File.ReadAllBytes(history)[..8]);

        var healthy = await env.Client.CheckAsync(new CheckRequest());
        Assert.True(healthy.Ok, healthy + "\n" + env.Agent.LogTail(30));
        var status = await env.Client.GetStatusAsync(new GetStatusRequest());
        Assert.All(status.Pgbackrest.Repositories, r =>
            Assert.True(r.ArchiveContinuity.Problems.Count == 0 && string.CompareOrdinal(r.ArchiveContinuity.Newest, after[^1]) >= 0, r.ArchiveContinuity.ToString()));

        File.Delete(ArchiveContinuityTests.ArchivedFile(env, after[1]));
        await DeleteArchivedAsync(env, stores[0], after[1]);
        var check = await env.Client.CheckAsync(new CheckRequest());
        Assert.False(check.Ok, env.Agent.LogTail(30));
        Assert.All(check.Repositories, r => Assert.Contains($"1 WAL segment missing ({after[1]})", r.Message));
        Assert.All(check.Repositories, r => Assert.Contains($"after {after[0]} was archived", r.Message));
    });

    /// <summary>
    /// An S3 listing answers 1000 keys a page. With 1 MiB segments a log id's directory holds 4096 of them, so a busy
    /// archive's listing spans pages: 1100 more segments stored in the directory (empty objects: only their names count
    /// here), one left out on the second page, are all seen and the one left out is named.
    /// </summary>
    [Fact]
    public Task ArchiveGap_S3DirectoryOfMoreThanOnePage_OneSegmentMissingOnSecondPageNamed() => output.OnFailureAsync(emulators.LogTails, async () =>
    {
        const long SegmentsPerLogId = 4096;
        var path = emulators.UniquePath("pages");
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            InitDbArguments = ["--wal-segsize=1"],
            AgentSettings = emulators.S3.RepositorySettings(1, path),
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.BackupAsync("full", repo: 2);
        var newest = (await ArchiveSegmentsAsync(env, 2))[^1];

        var objects = await emulators.S3.ListObjectsAsync($"{path.TrimStart('/')}/archive/{env.Stanza}/");
        var directory = Path.GetDirectoryName(Named(objects, newest))!;
        var number = Convert.ToInt64(newest[8..16], 16) * SegmentsPerLogId + Convert.ToInt64(newest[16..], 16);
        var added = Enumerable.Range(1, 1100)
            .Select(i => $"{newest[..8]}{(number + i) / SegmentsPerLogId:X8}{(number + i) % SegmentsPerLogId:X8}")
            .ToList();
        var left = added[1040];
        await emulators.S3.PutObjectsAsync(added.Where(n => n != left).Select(n => $"{directory}/{n}-{new string('0', 40)}.zst"), []);
        Assert.True((await emulators.S3.ListObjectsAsync(directory + "/")).Count > 1000);

        var status = await env.Client.GetStatusAsync(new GetStatusRequest { Refresh = true });
        var continuity = status.Pgbackrest.Repositories.Single(r => r.Repo == 2).ArchiveContinuity;
        Assert.Equal(added[^1], continuity.Newest);
        var gap = Assert.Single(continuity.Gaps);
        Assert.Equal((left, left, 1L, added[1039]), (gap.FirstMissing, gap.LastMissing, gap.Count, gap.After));
        Assert.Equal(1, continuity.MissingSegments);
        // pgBackRest's own directory listing (delimited) went past the first page.
        Assert.Contains(File.ReadLines(emulators.S3.LogFile), l =>
            l.Contains("continuation-token=", StringComparison.Ordinal) && l.Contains("delimiter=%2F", StringComparison.Ordinal) &&
            l.Contains(path.TrimStart('/'), StringComparison.Ordinal));
    });

    /// <summary>
    /// Settings for repo1 posix (the harness's directory) encrypted with aes-256-cbc, then one repository in each of
    /// <paramref name="emulators"/> (repo2...) under a prefix of its own.
    /// </summary>
    private (Dictionary<string, string?> Settings, List<(StorageEmulator Store, string Path)> Stores) EncryptedPosixAnd(
        TestDirectory secrets, params StorageEmulator[] stores)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Agent__Repositories__0__CipherType"] = "aes-256-cbc",
            ["Agent__Repositories__0__CipherPassFile"] = secrets.WriteFile("cipher-pass", $"cipher-{Guid.NewGuid():N}\n"),
        };
        var placed = new List<(StorageEmulator Store, string Path)>();
        foreach (var (emulator, index) in stores.Select((e, i) => (e, i + 1)))
        {
            var path = emulators.UniquePath("continuity");
            placed.Add((emulator, path));
            foreach (var (key, value) in emulator.RepositorySettings(index, path))
            {
                settings[key] = value;
            }
        }

        return (settings, placed);
    }

    /// <summary><paramref name="count"/> segments, each with a new table in it, switched and archived: their names.</summary>
    private static async Task<List<string>> ArchiveSegmentsAsync(TestEnvironment env, int count)
    {
        var segments = new List<string>();
        for (var i = 0; i < count; i++)
        {
            await env.Postgres.ExecuteAsync($"create table t{Guid.NewGuid():N} as select generate_series(1, 1000) as n");
            segments.Add(await env.Postgres.SwitchWalAsync());
            await env.Postgres.WaitForArchivedAsync(segments[^1], TimeSpan.FromSeconds(60));
        }

        return segments;
    }

    /// <summary>Deletes <paramref name="segment"/>'s object from a repository in an emulator, behind pgBackRest's back.</summary>
    private static async Task DeleteArchivedAsync(TestEnvironment env, (StorageEmulator Store, string Path) repository, string segment)
    {
        var objects = await repository.Store.ListObjectsAsync($"{repository.Path.TrimStart('/')}/archive/{env.Stanza}/");
        await repository.Store.DeleteObjectAsync(Named(objects, segment));
    }

    /// <summary>The one object of <paramref name="objects"/> that holds <paramref name="segment"/> ("&lt;segment&gt;-&lt;sha1&gt;.&lt;ext&gt;").</summary>
    private static string Named(IEnumerable<string> objects, string segment) =>
        objects.Single(o => Path.GetFileName(o).StartsWith(segment + "-", StringComparison.Ordinal));

    /// <summary>
    /// pgBackRest's verify of repo4 (azure), through the agent: it reads every backup file and archived segment there.
    /// Not s3: s3rver leaves the archive id's "directory" (no object directly in it) out of a delimited listing, so
    /// verify finds no archive there at all ("archiveId: none found") and checks no WAL (the agent reports that).
    /// </summary>
    private static Task<VerifyReport> VerifyAzureAsync(TestEnvironment env) => VerifyAsync(env, 4);

    private static async Task<VerifyReport> VerifyAsync(TestEnvironment env, int repo)
    {
        var done = await env.WaitAsync(await env.Client.VerifyAsync(new VerifyRequest { Repo = repo }));
        var report = Assert.Single(done.Verify.Repositories);
        Assert.Equal(repo, report.Repo);
        return report;
    }

    private static async Task<string> MetricsTextAsync(TestEnvironment env)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
    }
}
