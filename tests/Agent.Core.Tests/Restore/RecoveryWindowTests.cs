using Backrest.Agent.Core.Archive;
using Backrest.Agent.Core.Continuity;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Restore;

namespace Backrest.Agent.Core.Tests.Restore;

public class RecoveryWindowTests
{
    private static StanzaInfo Info(string file) =>
        Assert.Single(InfoParser.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", file))));

    private static readonly ArchiveStats NoPushes = new([], null, null, 0, []);

    [Fact]
    public void For_AfterStanzaUpgrade_StartsAtFirstBackupOfCurrentDatabase()
    {
        // Two db entries (15 as id 1, 16 as id 2): the older full and incr belong to PostgreSQL 15.
        var info = Info("info-stanza-upgrade-2.45.json");

        var window = RecoveryWindow.For(info, 1, null, null);

        Assert.Equal("20261202-090000F", window.EarliestBackup);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1796202012), window.EarliestTime);
        Assert.Equal("0/3000100", window.EarliestLsn);
        // The newest WAL of the current database's archive (16-2), not the older archive's higher-numbered max.
        Assert.Equal("000000010000000000000006", window.LatestWal);
    }

    [Fact]
    public void Scanner_RecoveryStart_AfterStanzaUpgrade_IsCurrentDatabasesOldestBackup()
    {
        var info = Info("info-stanza-upgrade-2.45.json");

        Assert.Equal("000000010000000000000003", ArchiveContinuityScanner.RecoveryStart(info, 1, 2));
        Assert.Equal("000000010000000000000002", ArchiveContinuityScanner.RecoveryStart(info, 1, 1));
    }

    [Fact]
    public void Current_ArchiveGap_EndsBeforeItAndNamesIt()
    {
        var info = Info("info-sample-2.45.json");
        var stored = new DateTimeOffset(2026, 11, 24, 11, 48, 30, TimeSpan.Zero);
        var files = Enumerable.Range(2, 14).Where(n => n != 9)
            .Select(n => new ArchivedFile(new WalSegment(1, (ulong)n).Name(WalSegment.DefaultSize), stored.AddSeconds(n))).ToList();
        var continuity = ArchiveContinuity.Analyze("15-1", files, new Dictionary<uint, IReadOnlyList<TimelineSwitch>>(),
            "000000010000000000000002", WalSegment.DefaultSize, stored);

        var window = RecoveryWindow.Current(info, 1, NoPushes, null, continuity);
        var whole = RecoveryWindow.Current(info, 1, NoPushes, null, null);

        Assert.Equal("000000010000000000000008", window.LatestWal);
        Assert.Equal(stored.AddSeconds(8), window.LatestTime);
        Assert.Equal("000000010000000000000009", window.Gap!.FirstMissing);
        Assert.Equal(1, window.MissingSegments);
        Assert.Contains("gap", window.Describe());
        Assert.Equal("00000001000000000000000F", whole.LatestWal);
        Assert.Null(whole.Gap);
    }
}
