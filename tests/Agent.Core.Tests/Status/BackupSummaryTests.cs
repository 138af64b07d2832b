using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Status;

namespace Backrest.Agent.Core.Tests.Status;

/// <summary>The per-type reduction metrics and alerts read: counts, and the newest backup of each type by stop time.</summary>
public sealed class BackupSummaryTests
{
    private static StanzaInfo Sample => Assert.Single(InfoParser.Parse(
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "info-sample-2.45.json"))));

    [Fact]
    public void Of_Sample245_EachTypeCountedWithItsNewestBackup()
    {
        var info = Sample;

        var summary = BackupSummary.Of(info);

        Assert.Equal(["full", "diff", "incr"], summary.Types.Select(t => t.Type));
        Assert.All(summary.Types, t => Assert.Equal(1, t.Count));
        var full = summary.Types.Single(t => t.Type == "full").Last!;
        Assert.Equal("20261124-114826F", full.Label);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1795520908), full.Stop);
    }

    [Fact]
    public void Of_SeveralFulls_NewestIsTheLastToStopNotTheLastListed()
    {
        var template = Sample.Backups[0];
        var older = template with { Label = "a", Start = DateTimeOffset.FromUnixTimeSeconds(100), Stop = DateTimeOffset.FromUnixTimeSeconds(200) };
        var newer = template with { Label = "b", Start = DateTimeOffset.FromUnixTimeSeconds(50), Stop = DateTimeOffset.FromUnixTimeSeconds(300) };

        var summary = BackupSummary.Of(Sample with { Backups = [newer, older] });

        var full = summary.Types.Single(t => t.Type == "full");
        Assert.Equal(2, full.Count);
        Assert.Equal("b", full.Last!.Label);
    }

    [Fact]
    public void Of_NoBackups_EveryTypeKnownAsZeroWithoutANewest()
    {
        var summary = BackupSummary.Of(Sample with { Backups = [] });

        Assert.All(summary.Types, t => Assert.Equal((0, (BackupInfo?)null), (t.Count, t.Last)));
    }
}
