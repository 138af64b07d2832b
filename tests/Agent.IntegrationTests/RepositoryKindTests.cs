using System.Diagnostics;
using System.Text.RegularExpressions;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.IntegrationTests.Harness.Emulators;
using Backrest.Agent.IntegrationTests.RestoreTests;
using Backrest.Agent.V1;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// Every repository kind with the real agent, PostgreSQL and pgBackRest: posix in a directory, s3, gcs and azure in
/// the emulators (shared by the collection, a prefix per test).
/// </summary>
[Collection(StorageEmulatorsCollection.Name)]
public sealed partial class RepositoryKindTests(StorageEmulators emulators, ITestOutputHelper output)
{
    private const int RowsBeforeBackup = 5000;
    private const int RowsAfterBackup = 700;

    [Theory]
    [InlineData("posix")]
    [InlineData("s3")]
    [InlineData("gcs")]
    [InlineData("azure")]
    public Task Repository_OneOfKind_StanzaWalBackupListedAndRestoredExactly(string kind) => output.OnFailureAsync(emulators.LogTails, async () =>
    {
        var clock = Stopwatch.StartNew();
        var store = kind == "posix" ? null : emulators.For(kind);
        var path = emulators.UniquePath(kind);
        var settings = store?.RepositorySettings(0, path) ?? new Dictionary<string, string?>();
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = settings });
        Assert.Contains($"repo1-type={kind}", await File.ReadAllTextAsync(env.Agent.ConfigPath));
        var repository = new StoredRepository(store, store is null ? env.Agent.RepositoryPath : path);

        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await AddRowsAsync(env.Postgres, RowsBeforeBackup);
        var segment = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(segment, TimeSpan.FromSeconds(60));
        Assert.Contains(segment, await repository.ArchivedSegmentsAsync(env.Stanza));

        var backup = await env.BackupAsync("full");
        var listed = Assert.Single((await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups);
        Assert.Equal((backup.Backup.Backup.Label, 1), (listed.Label, listed.Repo));

        await AddRowsAsync(env.Postgres, RowsAfterBackup);
        await RestoreSteps.SwitchAndWaitArchivedAsync(env.Postgres);
        await AssertRestoredCopyHasAllRowsAsync(env, repo: 0);
        output.WriteLine($"{kind}: {clock.Elapsed.TotalSeconds:0.0} s");
    });

    [Fact]
    public Task Repositories_AllFourKinds_EveryWalSegmentInEachAndRepo3BackupRestores() => output.OnFailureAsync(emulators.LogTails, async () =>
    {
        var clock = Stopwatch.StartNew();
        // repo1 posix (the harness's default), repo2 s3, repo3 azure, repo4 gcs.
        var settings = new Dictionary<string, string?>();
        var stores = new List<StoredRepository>();
        foreach (var (emulator, index) in new StorageEmulator[] { emulators.S3, emulators.Azure, emulators.Gcs }.Select((e, i) => (e, i + 1)))
        {
            var path = emulators.UniquePath("all-four");
            stores.Add(new StoredRepository(emulator, path));
            foreach (var (key, value) in emulator.RepositorySettings(index, path))
            {
                settings[key] = value;
            }
        }

        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = settings });
        stores.Insert(0, new StoredRepository(null, env.Agent.RepositoryPath));
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await AddRowsAsync(env.Postgres, RowsBeforeBackup);
        await RestoreSteps.SwitchAndWaitArchivedAsync(env.Postgres);

        var backup = await env.BackupAsync("full", repo: 3);
        Assert.Equal(3, backup.Backup.Backup.Repo);
        var inRepo3 = Assert.Single((await env.Client.ListBackupsAsync(new ListBackupsRequest { Repo = 3 })).Backups);
        Assert.Equal((backup.Backup.Backup.Label, 3), (inRepo3.Label, inRepo3.Repo));
        Assert.All((await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups, b => Assert.Equal(3, b.Repo));
        Assert.Empty((await env.Client.ListBackupsAsync(new ListBackupsRequest { Repo = 1 })).Backups);

        await AddRowsAsync(env.Postgres, RowsAfterBackup);
        var last = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(last, TimeSpan.FromSeconds(60));

        // Every segment PostgreSQL archived (the archive client answers only once all four stored it) is in every store.
        var archived = await stores[0].ArchivedSegmentsAsync(env.Stanza);
        Assert.Contains(last, archived);
        Assert.True(archived.Count >= 3, $"only {archived.Count} segments archived: {string.Join(", ", archived)}");
        foreach (var store in stores.Skip(1))
        {
            Assert.Equal(archived, await store.ArchivedSegmentsAsync(env.Stanza));
        }

        await AssertRestoredCopyHasAllRowsAsync(env, repo: 3);
        output.WriteLine($"all four: {archived.Count} segments in each; {clock.Elapsed.TotalSeconds:0.0} s");
    });

    private static Task AddRowsAsync(PostgresCluster postgres, int count) => postgres.ExecuteAsync(
        $"create table if not exists rows (id bigserial primary key, note text); insert into rows (note) select 'row ' || g from generate_series(1, {count}) g");

    /// <summary>Restores the latest state (from <paramref name="repo"/>, 0 = pgBackRest's choice) into a new directory and counts the rows there.</summary>
    private static async Task AssertRestoredCopyHasAllRowsAsync(TestEnvironment env, int repo)
    {
        var directory = env.Directory.Combine("restored");
        var port = FreePort.Next();
        var done = await RestoreSteps.RestoreAsync(env, new StartRestoreRequest { DataDirectory = directory, Port = port, Repo = repo });
        await using var copy = await RestoreSteps.StartCopyAsync(env, directory, port);
        await copy.Cluster.WaitForRecoveryEndAsync(RestoreSteps.RecoveryTimeout);
        Assert.Equal(RowsBeforeBackup + RowsAfterBackup, await copy.Cluster.ScalarAsync<long>("select count(*) from rows"));
        Assert.Equal(
            await env.Postgres.ScalarAsync<long>("select sum(id) from rows"),
            await copy.Cluster.ScalarAsync<long>("select sum(id) from rows"));
        if (repo != 0)
        {
            Assert.Contains($"repo{repo}", done.Description + string.Join(' ', done.Warnings) + done.Restore.NextStep, StringComparison.Ordinal);
        }
    }

    /// <summary>Where a repository's files are: a posix directory, or a prefix in an emulator's bucket or container.</summary>
    private sealed record StoredRepository(StorageEmulator? Store, string Path)
    {
        /// <summary>The WAL segments in the repository's archive, read from the store itself.</summary>
        public async Task<SortedSet<string>> ArchivedSegmentsAsync(string stanza)
        {
            var archive = $"{Path.TrimStart('/')}/archive/{stanza}/";
            var names = Store is null
                ? Directory.EnumerateFiles("/" + archive, "*", SearchOption.AllDirectories)
                : await Store.ListObjectsAsync(archive);
            return new SortedSet<string>(
                names.Select(name => Segment().Match(System.IO.Path.GetFileName(name))).Where(m => m.Success).Select(m => m.Groups[1].Value),
                StringComparer.Ordinal);
        }
    }

    [GeneratedRegex("^([0-9A-F]{24})-[0-9a-f]{40}")]
    private static partial Regex Segment();
}
