using Backrest.Agent.Core.Restore;

namespace Backrest.Agent.Core.Tests.Restore;

public class RestoreTargetsTests
{
    [Theory]
    [InlineData("2026-11-24 11:49:00.181791+00", "2026-11-24 11:49:00.181791+00")]
    [InlineData("2026-11-24 11:49:00", "2026-11-24 11:49:00.000000+00")]
    [InlineData("2026-11-24T11:49:00Z", "2026-11-24 11:49:00.000000+00")]
    [InlineData("2026-11-24 13:49:00.5+02:00", "2026-11-24 11:49:00.500000+00")]
    [InlineData("2026-11-24 06:19:00-0530", "2026-11-24 11:49:00.000000+00")]
    public void ParseTime_AcceptedForms_NormaliseToUtc(string input, string expected) =>
        Assert.Equal(expected, RestoreTargets.FormatTime(RestoreTargets.ParseTime(input)!.Value));

    [Theory]
    [InlineData("yesterday")]
    [InlineData("2026-13-01 00:00:00")]
    [InlineData("2026-11-24")]
    [InlineData("2026-11-24 11:49:00'; drop table x; --")]
    [InlineData("")]
    public void ParseTime_Rejects(string input) => Assert.Null(RestoreTargets.ParseTime(input));

    [Theory]
    [InlineData("0/3000050", 0x3000050UL)]
    [InlineData("16/B374D848", 0x16B374D848UL)]
    public void ParseLsn_Valid(string input, ulong expected) => Assert.Equal(expected, RestoreTargets.ParseLsn(input));

    [Theory]
    [InlineData("3000050")]
    [InlineData("0/")]
    [InlineData("G/1")]
    [InlineData("123456789/1")]
    public void ParseLsn_Invalid(string input) => Assert.Null(RestoreTargets.ParseLsn(input));

    [Theory]
    [InlineData("735", true)]
    [InlineData("2", false)]
    [InlineData("-5", false)]
    [InlineData("7e3", false)]
    [InlineData("73\n5", false)]
    [InlineData("\u0667\u0663\u0665", false)]
    public void IsXid(string input, bool expected) => Assert.Equal(expected, RestoreTargets.IsXid(input));

    [Theory]
    [InlineData("before_migration", true)]
    [InlineData("it's", false)]
    [InlineData("a\nb", false)]
    [InlineData("", false)]
    [InlineData("\u540d\u540d\u540d", true)]
    public void IsRestorePointName(string input, bool expected) => Assert.Equal(expected, RestoreTargets.IsRestorePointName(input));

    [Fact]
    public void IsRestorePointName_CountsBytesNotCharacters()
    {
        Assert.True(RestoreTargets.IsRestorePointName(new string('a', 63)));
        Assert.False(RestoreTargets.IsRestorePointName(new string('a', 64)));
        Assert.True(RestoreTargets.IsRestorePointName(new string('\u540d', 21)));  // 63 bytes in UTF-8
        Assert.False(RestoreTargets.IsRestorePointName(new string('\u540d', 22))); // 66 bytes
    }

    [Theory]
    [InlineData("2", "2")]
    [InlineData("0x1F", "31")]
    [InlineData("4294967295", "4294967295")]
    [InlineData("0xFFFFFFFF", "4294967295")]
    [InlineData("0", null)]
    [InlineData("4294967296", null)]
    [InlineData("0x1FFFFFFFF", null)]
    [InlineData("2\n", null)]
    [InlineData("\u0662", null)]
    [InlineData("-1", null)]
    [InlineData("", null)]
    public void ParseTimeline(string input, string? expected) => Assert.Equal(expected, RestoreTargets.ParseTimeline(input));
}
