using Backrest.Agent.Core.Continuity;

namespace Backrest.Agent.Core.Tests.Continuity;

public class WalSegmentTests
{
    private const long Mib16 = WalSegment.DefaultSize;
    private const long Mib64 = 64L * 1024 * 1024;

    [Fact]
    public void Name_After_FF_16MiB_IsNextLogIdFirstSegment()
    {
        var last = WalSegment.Parse("0000000100000000000000FF", Mib16);
        var next = last with { Number = last.Number + 1 };

        Assert.Equal(255UL, last.Number);
        Assert.Equal("000000010000000100000000", next.Name(Mib16));
    }

    [Fact]
    public void Parse_64MiBSegments_FourPerLogIdAndFFIsNotASegment()
    {
        Assert.Equal(64UL, WalSegment.SegmentsPerLog(Mib64));
        Assert.Equal("000000030000000100000000", new WalSegment(3, 64).Name(Mib64));
        Assert.Equal(64UL + 63, WalSegment.Parse("00000003000000010000003F", Mib64).Number);
        Assert.False(WalSegment.TryParse("0000000300000000000000FF", Mib64, out _));
    }

    [Theory]
    [InlineData("00000001000000000000000A.00000028.backup")]
    [InlineData("00000002.history")]
    [InlineData("000000010000000000000003.partial")]
    [InlineData("00000001000000000000000G")]
    public void TryParse_NotASegment_False(string name) => Assert.False(WalSegment.TryParse(name, Mib16, out _));

    [Fact]
    public void NumberOf_Lsn_IsSegmentHoldingIt()
    {
        Assert.Equal(2UL, WalSegment.NumberOf("0/2000028", Mib16));
        Assert.Equal(256UL + 3, WalSegment.NumberOf("1/3FFFFFF", Mib16));
        Assert.Throws<FormatException>(() => WalSegment.ParseLsn("12345"));
    }
}
