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
    public void IsXid(string input, bool expected) => Assert.Equal(expected, RestoreTargets.IsXid(input));

    [Theory]
    [InlineData("before_migration", true)]
    [InlineData("it's", false)]
    [InlineData("a\nb", false)]
    [InlineData("", false)]
    public void IsRestorePointName(string input, bool expected) => Assert.Equal(expected, RestoreTargets.IsRestorePointName(input));
}
