using Backrest.Agent.Core.Cluster;
using Backrest.Agent.Core.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Backrest.Agent.Core.Tests.Cluster;

/// <summary>The backup lease on a real posix repository directory shared by several agents (as a ReadWriteMany volume is).</summary>
public sealed class BackupLeaseTests : IDisposable
{
    private readonly string _repo = Directory.CreateTempSubdirectory("lease-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 5, 6, 0, 0, TimeSpan.Zero));

    private string LeaseFile => Path.Combine(_repo, BackupLease.ObjectName("main"));

    private BackupLease Agent(string member) => new(new AgentOptions
    {
        Stanza = "main",
        Repositories = [new RepositoryOptions { Type = "posix", Path = _repo }],
        Cluster = new ClusterOptions { Member = member, LeaseSeconds = 30 },
    }, _time, NullLogger<BackupLease>.Instance);

    [Fact]
    public async Task Acquire_WhileAnotherAgentHolds_RefusedNamingTheHolder_FreeAgainAfterRelease()
    {
        var first = await Agent("pg-0").AcquireAsync(1, "full backup to repo1", CancellationToken.None);
        await first.AttachAsync("op-1", CancellationToken.None);

        var refused = await Assert.ThrowsAsync<AgentException>(() => Agent("pg-1").AcquireAsync(1, "incr backup to repo1", CancellationToken.None));
        Assert.Equal(AgentErrorKind.FailedPrecondition, refused.Kind);
        Assert.Contains("pg-0 runs full backup to repo1 (operation op-1)", refused.Message, StringComparison.Ordinal);

        await first.DisposeAsync();
        Assert.False(File.Exists(LeaseFile), "the lease outlived its backup");
        await using var second = await Agent("pg-1").AcquireAsync(1, "incr backup to repo1", CancellationToken.None);
        Assert.Contains("\"Holder\": \"pg-1\"", await File.ReadAllTextAsync(LeaseFile), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Acquire_ManyAgentsAtOnce_ExactlyOneHoldsIt()
    {
        var attempts = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(async () =>
        {
            try
            {
                return await Agent($"pg-{i}").AcquireAsync(1, "full backup to repo1", CancellationToken.None);
            }
            catch (AgentException)
            {
                return null;
            }
        })));

        var holder = Assert.Single(attempts, a => a is not null);
        await holder!.DisposeAsync();
    }

    [Fact]
    public async Task Acquire_LeaseOfADeadHolderExpired_TakenOver()
    {
        var dead = new LeaseRecord("pg-9", "dead", "main", 1, "full backup to repo1", "op-9",
            _time.GetUtcNow().AddMinutes(-5), _time.GetUtcNow().AddMinutes(-5), _time.GetUtcNow().AddSeconds(-1));
        Directory.CreateDirectory(Path.GetDirectoryName(LeaseFile)!);
        await File.WriteAllBytesAsync(LeaseFile, BackupLease.Serialize(dead));

        await using var taken = await Agent("pg-1").AcquireAsync(1, "full backup to repo1", CancellationToken.None);

        Assert.Equal("pg-1", BackupLease.Deserialize(await File.ReadAllBytesAsync(LeaseFile))!.Holder);
    }

    [Fact]
    public async Task Acquire_LeaseLeftInOwnNameByAnEarlierRun_TakenOver_ButOneThisRunHoldsIsNot()
    {
        var earlier = new LeaseRecord("pg-0", "killed-run", "main", 1, "full backup to repo1", "op-1",
            _time.GetUtcNow(), _time.GetUtcNow(), _time.GetUtcNow().AddSeconds(30));
        Directory.CreateDirectory(Path.GetDirectoryName(LeaseFile)!);
        await File.WriteAllBytesAsync(LeaseFile, BackupLease.Serialize(earlier));
        var agent = Agent("pg-0");

        await using var held = await agent.AcquireAsync(1, "full backup to repo1", CancellationToken.None);

        // Two requests racing inside one agent: the second must not take the first's live lease.
        await Assert.ThrowsAsync<AgentException>(() => agent.AcquireAsync(1, "incr backup to repo1", CancellationToken.None));
        Assert.False(held.Lost.IsCancellationRequested);
    }

    [Fact]
    public async Task Renew_AnotherAgentTookTheLease_LostFiresWithItsName()
    {
        await using var held = await Agent("pg-0").AcquireAsync(1, "full backup to repo1", CancellationToken.None);
        var thief = new LeaseRecord("pg-1", "other", "main", 1, "full backup to repo1", null, _time.GetUtcNow(), _time.GetUtcNow(), _time.GetUtcNow().AddSeconds(30));
        await File.WriteAllBytesAsync(LeaseFile, BackupLease.Serialize(thief));

        var lost = new TaskCompletionSource();
        held.Lost.Register(() => lost.TrySetResult());
        _time.Advance(TimeSpan.FromSeconds(11)); // one renewal interval (a third of 30 s)
        await lost.Task.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Contains("pg-1", held.LostReason, StringComparison.Ordinal);
        // A lost lease is not deleted on release: it is the other agent's now.
        await held.DisposeAsync();
        Assert.True(File.Exists(LeaseFile));
    }

    [Fact]
    public async Task Renew_WhileHeld_ExpiryMovesForward()
    {
        await using var held = await Agent("pg-0").AcquireAsync(1, "full backup to repo1", CancellationToken.None);
        var before = BackupLease.Deserialize(await File.ReadAllBytesAsync(LeaseFile))!.Expires;

        _time.Advance(TimeSpan.FromSeconds(11));
        await WaitUntilAsync(() => BackupLease.Deserialize(File.ReadAllBytes(LeaseFile))!.Expires > before);

        Assert.False(held.Lost.IsCancellationRequested);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        for (var i = 0; i < 100 && !condition(); i++)
        {
            await Task.Delay(50);
        }

        Assert.True(condition());
    }

    public void Dispose() => TempDirectories.Delete(_repo);
}
