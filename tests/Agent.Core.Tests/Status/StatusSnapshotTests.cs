using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Status;

namespace Backrest.Agent.Core.Tests.Status;

/// <summary>What readiness reads from a snapshot: a stuck refresh, and a stanza that does not exist yet.</summary>
public sealed class StatusSnapshotTests
{
    private static readonly DateTimeOffset Start = new(2026, 12, 5, 6, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Limit = StatusCache.FreshnessLimit(new StatusOptions { IntervalSeconds = 30, InfoTimeoutSeconds = 30 });

    private static StanzaInfo Info(int repo, int code) => Assert.Single(InfoParser.Parse($$$"""
        [{"archive":[],"backup":[],"cipher":"none","db":[],"name":"demo",
          "repo":[{"cipher":"none","key":{{{repo}}},"status":{"code":{{{code}}},"message":"m"}}],
          "status":{"code":{{{code}}},"lock":{"backup":{"held":false}},"message":"m"}}]
        """));

    private static CachedRepository Repo(int repo, RepositoryInfoRead read) => new(repo, "posix", read, null);

    [Fact]
    public void FreshnessLimit_Defaults_TwoIntervalsPlusTheInfoDeadlineAndAMargin() =>
        Assert.Equal(TimeSpan.FromSeconds(95), Limit);

    [Fact]
    public void NotTriedWithin_NeverTriedRightAfterStart_FreshUntilTheLimitPasses()
    {
        var snapshot = new StatusSnapshot("demo", [Repo(1, new RepositoryInfoRead(null, null, null, null))]);

        Assert.Empty(snapshot.NotTriedWithin(Limit, Start + TimeSpan.FromSeconds(10), Start));
        Assert.Equal([1], snapshot.NotTriedWithin(Limit, Start + Limit + TimeSpan.FromSeconds(1), Start));
    }

    [Fact]
    public void NotTriedWithin_AFailedReadIsAnAttempt_OnlyTheRepositoryWithoutOneIsStale()
    {
        var now = Start + TimeSpan.FromHours(1);
        var snapshot = new StatusSnapshot("demo",
        [
            Repo(1, new RepositoryInfoRead(Info(1, 0), now - Limit - TimeSpan.FromSeconds(1), null, null)),
            // Its info failed (a dead repository) a moment ago: the refresh runs, the data is old but the cache is not stuck.
            Repo(2, new RepositoryInfoRead(Info(2, 0), Start, "timed out", now - TimeSpan.FromSeconds(5))),
        ]);

        Assert.Equal([1], snapshot.NotTriedWithin(Limit, now, Start));
    }

    [Fact]
    public void StanzaMissingIn_MissingPathOrDataInOneRepository_NamesOnlyThatOne()
    {
        var snapshot = new StatusSnapshot("demo",
        [
            Repo(1, new RepositoryInfoRead(Info(1, 0), Start, null, null)),
            Repo(2, new RepositoryInfoRead(Info(2, 1), Start, null, null)),
            Repo(3, new RepositoryInfoRead(Info(3, 3), Start, null, null)),
            // Not read yet: unknown, not missing.
            Repo(4, new RepositoryInfoRead(null, null, null, null)),
        ]);

        Assert.Equal([2, 3], snapshot.StanzaMissingIn);
    }
}
