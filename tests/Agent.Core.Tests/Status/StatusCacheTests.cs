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

    [Fact]
    public async Task RefreshAsync_OneRepositoryDead_TheOtherIsReadAndTheDeadOneNamedWithinItsDeadline()
    {
        var options = new AgentOptions
        {
            Stanza = "cache",
            Postgres = new PostgresOptions { DataDirectory = Sub("pgdata") },
            PgBackRest = new PgBackRestOptions
            {
                ConfigPath = Sub("conf/pgbackrest.conf"), LockPath = Sub("lock"), LogPath = Sub("log"), SpoolPath = Sub("spool"), IoTimeoutSeconds = 1,
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
        var cache = new StatusCache(options, client, continuity, TimeProvider.System, NullLogger<StatusCache>.Instance);

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
