using System.Net;
using System.Net.Sockets;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Continuity;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Postgres;
using Backrest.Agent.Core.Repositories;
using Backrest.Agent.Core.Status;
using Microsoft.Extensions.Logging.Abstractions;

namespace Backrest.Agent.Core.Tests.Status;

/// <summary>The status cache with the real pgBackRest binary: a posix repository and an S3 one on a closed port.</summary>
public sealed class StatusCacheTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("status-cache-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Sub(string name) => Path.Combine(_dir.FullName, name);

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>repo1 posix (no stanza yet), repo2 S3 on a closed port, each info under a 3 s deadline.</summary>
    private async Task<StatusCache> CreateCacheAsync(int ioTimeoutSeconds = 1)
    {
        var options = new AgentOptions
        {
            Stanza = "cache",
            Postgres = new PostgresOptions { DataDirectory = Sub("pgdata") },
            PgBackRest = new PgBackRestOptions
            {
                ConfigPath = Sub("conf/pgbackrest.conf"), LockPath = Sub("lock"), LogPath = Sub("log"), SpoolPath = Sub("spool"),
                IoTimeoutSeconds = ioTimeoutSeconds,
            },
            Repositories =
            [
                new RepositoryOptions { Type = "posix", Path = Sub("repo1") },
                new RepositoryOptions
                {
                    Type = "s3", Path = "/repo",
                    S3 = new S3RepositoryOptions
                    {
                        Bucket = "b", Endpoint = "127.0.0.1", Port = ClosedPort(), Region = "us-east-1", UriStyle = "path", VerifyTls = false,
                        Key = "AKIAKEY", KeySecret = "secret-value",
                    },
                },
            ],
            Status = new StatusOptions { InfoTimeoutSeconds = 3, ProbeTimeoutSeconds = 2 },
        };
        var runner = new ProcessRunner();
        var capabilities = await PgBackRestClient.ProbeAsync(runner, "pgbackrest", CancellationToken.None);
        var runtime = new AgentRuntime(capabilities, EffectiveSettings.Resolve(options.PgBackRest, capabilities, 1), 1);
        var client = new PgBackRestClient(runner, options, new PgBackRestConfigFile(options, runtime), TimeProvider.System,
            NullLogger<PgBackRestClient>.Instance);
        var continuity = new ArchiveContinuityScanner(client, new PostgresClient(options, TimeProvider.System, NullLogger<PostgresClient>.Instance), TimeProvider.System);
        return new StatusCache(options, client, continuity, TimeProvider.System, NullLogger<StatusCache>.Instance);
    }

    [Fact]
    public async Task RefreshAsync_OneRepositoryDead_TheOtherIsReadAndTheDeadOneNamedWithinItsDeadline()
    {
        var cache = await CreateCacheAsync();
        var before = cache.Snapshot();
        Assert.All(before.Repositories, r => Assert.Null(r.Read.ReadAt));
        Assert.Null(before.Info);

        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await cache.RefreshAsync(limit.Token);
        var snapshot = cache.Snapshot();

        var (posix, s3) = (snapshot.Repositories[0], snapshot.Repositories[1]);
        Assert.NotNull(posix.Read.ReadAt);
        Assert.Null(posix.Read.Error);
        Assert.Equal(1, posix.Read.Info!.StatusCode); // missing stanza path: read, not failed
        Assert.True(posix.Probe!.Reachable, posix.Probe.Message);

        Assert.Null(s3.Read.Info);
        Assert.NotNull(s3.Read.Error);
        Assert.Equal(ProbeErrorClass.Connect, s3.Probe!.ErrorClass);
        Assert.False(s3.Reachable);
        Assert.Contains("repo2: ", snapshot.InfoError);
        Assert.Null(snapshot.InfoReadAt); // repo2 was never read: the answer cannot claim an age
        Assert.Equal(1, snapshot.Info!.StatusCode);
        Assert.DoesNotContain("secret-value", s3.Read.Error + s3.Probe.Message);

        // Waiting for the first read returns at once now that every repository was tried.
        await cache.WaitForFirstReadAsync(new CancellationTokenSource(TimeSpan.FromSeconds(1)).Token);
    }

    [Fact]
    public async Task RefreshRepositoryAsync_AnotherRepositoryDead_ReadsOnlyItsOwnAndTheDeadOneFailsWithinTheDeadline()
    {
        // io-timeout 5 s: pgBackRest would block on the dead repository far longer than the cache's 3 s deadline.
        var cache = await CreateCacheAsync(ioTimeoutSeconds: 5);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var repo1 = await cache.RefreshRepositoryAsync(1, CancellationToken.None);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"repo1 alone took {clock.Elapsed}");
        Assert.Equal([1], repo1.Repositories.Select(r => r.Key));
        Assert.Equal(1, repo1.StatusCode);
        Assert.NotNull(cache.Snapshot().Repositories[0].Read.ReadAt);
        Assert.Null(cache.Snapshot().Repositories[1].Read.ReadAt); // repo2 was not touched

        clock.Restart();
        var dead = await Assert.ThrowsAsync<AgentException>(() => cache.RefreshRepositoryAsync(2, CancellationToken.None));
        Assert.Equal(AgentErrorKind.Unavailable, dead.Kind);
        Assert.Contains("repo2", dead.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"the dead repo2 held the caller {clock.Elapsed}");
        Assert.NotNull(cache.Snapshot().Repositories[1].Read.Error);
        Assert.DoesNotContain("secret-value", dead.Message);
    }

    [Fact]
    public void Merge_RepositoriesDisagree_StatusIsDifferentAcrossReposAndBackupsOrdered()
    {
        BackupInfo Backup(string label, int repo, long start) => new(label, "full", null, [], DateTimeOffset.FromUnixTimeSeconds(start),
            DateTimeOffset.FromUnixTimeSeconds(start + 10), null, null, null, null, repo, 1, 1, 1, 1, false, "2.45", 1);
        var noLock = new LockInfo(false, null, null);
        var one = new StanzaInfo("s", 0, "ok", noLock, null, [], [], [new RepositoryInfo(1, "none", 0, "ok")], [Backup("B", 1, 200)]);
        var two = new StanzaInfo("s", 2, "no valid backups", noLock, null, [], [], [new RepositoryInfo(2, "none", 2, "no valid backups")], [Backup("A", 2, 100)]);

        var merged = StatusSnapshot.Merge("s", [one, two])!;
        Assert.Equal((4, "different across repos"), (merged.StatusCode, merged.StatusMessage));
        Assert.Equal(["A", "B"], merged.Backups.Select(b => b.Label));
        Assert.Equal([1, 2], merged.Repositories.Select(r => r.Key));

        var split = StatusCache.ForRepository(merged, 2);
        Assert.Equal((2, "no valid backups"), (split.StatusCode, split.StatusMessage));
        Assert.Equal(["A"], split.Backups.Select(b => b.Label));
    }
}
