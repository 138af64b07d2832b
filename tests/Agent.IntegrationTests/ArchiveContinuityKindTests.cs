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
        var settings = new Dictionary<string, string?>
        {
            ["Agent__Repositories__0__CipherType"] = "aes-256-cbc",
            ["Agent__Repositories__0__CipherPassFile"] = secrets.WriteFile("cipher-pass", $"cipher-{Guid.NewGuid():N}\n"),
        };
        var stores = new List<(StorageEmulator Store, string Path)>();
        foreach (var (emulator, index) in new StorageEmulator[] { emulators.S3, emulators.Gcs, emulators.Azure }.Select((e, i) => (e, i + 1)))
        {
            var path = emulators.UniquePath("continuity");
            stores.Add((emulator, path));
            foreach (var (key, value) in emulator.RepositorySettings(index, path))
            {
                settings[key] = value;
            }
        }

        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = settings });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        for (var repo = 1; repo <= Repositories; repo++)
        {
            await env.BackupAsync("full", repo);
        }

        // Six segments after the backups: repo r loses segment r, so every gap has archived segments on both sides.
        var segments = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            await env.Postgres.ExecuteAsync($"create table t{i} as select generate_series(1, 1000) as n");
            segments.Add(await env.Postgres.SwitchWalAsync());
            await env.Postgres.WaitForArchivedAsync(segments[^1], TimeSpan.FromSeconds(60));
        }

        var healthy = await env.Client.CheckAsync(new CheckRequest());
        Assert.True(healthy.Ok, healthy + "\n" + env.Agent.LogTail(30));
        var windows = (await env.Client.GetRecoveryWindowAsync(new GetRecoveryWindowRequest())).Windows;
        Assert.Equal(Repositories, windows.Count);
        Assert.All(windows, w => Assert.Equal((0L, (ArchiveGap?)null), (w.MissingSegments, w.Gap)));
        Assert.All(windows, w => Assert.True(string.CompareOrdinal(w.LatestWal, segments[^1]) >= 0, w.ToString()));

        var verify = await VerifyAzureAsync(env);
        Assert.True((verify.Ok, verify.Errors) == (true, 0L), verify.ToString());

        // The encrypted repository really is: pgBackRest's files there are OpenSSL-salted, though their names are plain.
        var encrypted = ArchiveContinuityTests.ArchivedFile(env, segments[1]);
        Assert.Equal("Salted__"u8.ToArray(), File.ReadAllBytes(encrypted)[..8]);
        File.Delete(encrypted);
        for (var repo = 2; repo <= Repositories; repo++)
        {
            var (store, path) = stores[repo - 2];
            var objects = await store.ListObjectsAsync($"{path.TrimStart('/')}/archive/{env.Stanza}/");
            await store.DeleteObjectAsync(Named(objects, segments[repo]));
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

    /// <summary>The one object of <paramref name="objects"/> that holds <paramref name="segment"/> ("&lt;segment&gt;-&lt;sha1&gt;.&lt;ext&gt;").</summary>
    private static string Named(IEnumerable<string> objects, string segment) =>
        objects.Single(o => Path.GetFileName(o).StartsWith(segment + "-", StringComparison.Ordinal));

    /// <summary>
    /// pgBackRest's verify of repo4 (azure), through the agent: it reads every backup file and archived segment there.
    /// Not s3: s3rver leaves the archive id's "directory" (no object directly in it) out of a delimited listing, so
    /// verify finds no archive there at all ("archiveId: none found") and checks no WAL.
    /// </summary>
    private static async Task<VerifyReport> VerifyAzureAsync(TestEnvironment env)
    {
        var done = await env.WaitAsync(await env.Client.VerifyAsync(new VerifyRequest { Repo = 4 }));
        var report = Assert.Single(done.Verify.Repositories);
        Assert.Equal(4, report.Repo);
        return report;
    }

    private static async Task<string> MetricsTextAsync(TestEnvironment env)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
    }
}
