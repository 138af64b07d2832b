using Backrest.Agent.Core.Continuity;

namespace Backrest.Agent.Core.Tests.Continuity;

public class ArchiveContinuityTests
{
    private const long Size = WalSegment.DefaultSize;
    private static readonly DateTimeOffset T0 = new(2026, 12, 5, 4, 0, 0, TimeSpan.Zero);
    private static readonly IReadOnlyDictionary<uint, IReadOnlyList<TimelineSwitch>> NoHistory = new Dictionary<uint, IReadOnlyList<TimelineSwitch>>();

    /// <summary>Segments of timeline <paramref name="timeline"/> numbered <paramref name="numbers"/>, stored a minute apart.</summary>
    private static IEnumerable<ArchivedFile> Segments(uint timeline, params ulong[] numbers) =>
        numbers.Select(n => new ArchivedFile(new WalSegment(timeline, n).Name(Size), T0.AddMinutes(n)));

    private static ArchiveContinuity Analyze(IEnumerable<ArchivedFile> files, string? start,
        IReadOnlyDictionary<uint, IReadOnlyList<TimelineSwitch>>? histories = null) =>
        ArchiveContinuity.Analyze("15-1", files.ToList(), histories ?? NoHistory, start, Size, T0);

    [Fact]
    public void Analyze_Continuous_NoGapAndWindowEndsAtNewest()
    {
        var result = Analyze(Segments(1, 2, 3, 4, 5), "000000010000000000000002");

        Assert.True(result.Continuous);
        Assert.Equal(0, result.MissingSegments);
        Assert.Equal("000000010000000000000005", result.Newest);
        Assert.Equal("000000010000000000000005", result.LastContiguous);
        Assert.Equal(T0.AddMinutes(5), result.LastContiguousStored);
    }

    [Fact]
    public void Analyze_MissingSegmentAcrossLogIdBoundary_NamesItAndSince()
    {
        // 16 MiB segments: ...00FE, ...00FF, then log id 1's 00000000 (missing), 00000001.
        var result = Analyze(Segments(1, 0xFE, 0xFF, 0x101), "0000000100000000000000FE");

        var gap = Assert.Single(result.Gaps);
        Assert.Equal(("000000010000000100000000", "000000010000000100000000", 1L), (gap.FirstMissing, gap.LastMissing, gap.Count));
        Assert.Equal("0000000100000000000000FF", gap.After);
        Assert.Equal(T0.AddMinutes(0xFF), gap.Since);
        Assert.Equal("0000000100000000000000FF", result.LastContiguous);
        Assert.Equal("000000010000000100000001", result.Newest);
        Assert.Contains("1 WAL segment missing (000000010000000100000000)", result.Describe());
    }

    [Fact]
    public void Analyze_TwoGaps_CountsAllWindowEndsAtFirst()
    {
        var result = Analyze(Segments(1, 3, 4, 7, 8, 10), "000000010000000000000003");

        Assert.Equal(3, result.MissingSegments);
        Assert.Equal([("000000010000000000000005", "000000010000000000000006", 2L), ("000000010000000000000009", "000000010000000000000009", 1L)],
            result.Gaps.Select(g => (g.FirstMissing, g.LastMissing, g.Count)));
        Assert.Equal("000000010000000000000004", result.LastContiguous);
    }

    [Fact]
    public void Analyze_SegmentsBeforeOldestBackupMissing_NotAGap()
    {
        var result = Analyze(Segments(1, 1, 6, 7), "000000010000000000000006");

        Assert.True(result.Continuous);
        Assert.Equal("000000010000000000000006", result.From);
    }

    [Fact]
    public void Analyze_FirstSegmentMissing_GapHasNothingBeforeIt()
    {
        var result = Analyze(Segments(1, 7, 8), "000000010000000000000006");

        var gap = Assert.Single(result.Gaps);
        Assert.Equal(("000000010000000000000006", (string?)null), (gap.FirstMissing, gap.After));
        Assert.Null(result.LastContiguous);
    }

    [Fact]
    public void Analyze_TimelineSwitch_SwitchSegmentReadFromNewTimeline()
    {
        // Promoted at 0/5000028: timeline 1 ends in segment 5 (archived as .partial), timeline 2 starts with its segment 5.
        var histories = new Dictionary<uint, IReadOnlyList<TimelineSwitch>> { [2] = TimelineHistory.Parse("1\t0/5000028\tno recovery target specified\n") };
        var files = Segments(1, 2, 3, 4).Concat(Segments(2, 5, 6, 7))
            .Append(new ArchivedFile("000000010000000000000005.partial", T0)).Append(new ArchivedFile("00000002.history", T0)).ToList();

        var whole = Analyze(files, "000000010000000000000002", histories);
        var withoutNewFirst = Analyze(files.Where(f => f.Name != "000000020000000000000005"), "000000010000000000000002", histories);
        // Timeline 1's own segment 5 does not stand in for timeline 2's: recovery follows the newest timeline.
        var oldTimelineCopy = Analyze(files.Where(f => f.Name != "000000020000000000000005").Concat(Segments(1, 5)), "000000010000000000000002", histories);

        Assert.True(whole.Continuous);
        Assert.Equal("000000020000000000000007", whole.Newest);
        Assert.Equal("000000020000000000000005", Assert.Single(withoutNewFirst.Gaps).FirstMissing);
        Assert.Equal("000000010000000000000004", withoutNewFirst.LastContiguous);
        Assert.Equal("000000020000000000000005", Assert.Single(oldTimelineCopy.Gaps).FirstMissing);
    }

    [Fact]
    public void Analyze_TwoSwitches_FollowsTheNewestTimelinesAncestry()
    {
        // Timeline 2 began at segment 4; timeline 3 at segment 6: timeline 2's own segment 6 (written before it was
        // abandoned) does not stand in for timeline 3's.
        var histories = new Dictionary<uint, IReadOnlyList<TimelineSwitch>>
        {
            [3] = TimelineHistory.Parse("1\t0/4000000\tno recovery target specified\n\n2\t0/6000100\tbefore 2026-12-05 03:00:00+00\n"),
        };
        var files = Segments(1, 2, 3).Concat(Segments(2, 4)).Concat(Segments(3, 6, 7)).Concat(Segments(2, 5)).ToList();

        var result = Analyze(files, "000000010000000000000002", histories);
        var abandoned = Analyze(files.Where(f => f.Name != "000000030000000000000006").Concat(Segments(2, 6)), "000000010000000000000002", histories);

        Assert.True(result.Continuous, result.Describe());
        Assert.Equal("000000030000000000000007", result.Newest);
        Assert.Equal("000000030000000000000006", Assert.Single(abandoned.Gaps).FirstMissing);
    }

    [Fact]
    public void Analyze_NewestTimelineHistoryMissing_IsAProblem()
    {
        var result = Analyze(Segments(1, 2, 3).Concat(Segments(2, 4, 5)), "000000010000000000000002");

        Assert.False(result.Continuous);
        Assert.Contains("00000002.history is missing", Assert.Single(result.Problems));
    }

    [Fact]
    public void ParseListing_RepoLsJson_StripsChecksumKeepsStoredTime()
    {
        const string json = """
            {".":{"type":"path"},"0000000100000000":{"type":"path"},
             "0000000100000000/000000010000000000000001-0d1f2c3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d.gz":{"type":"file","size":65536,"time":1796446410},
             "0000000100000000/000000010000000000000002.00000028.backup":{"type":"file","size":370,"time":1796446411},
             "00000002.history":{"type":"file","size":42,"time":1796446412}}
            """;

        var files = ArchiveContinuityScanner.ParseListing(json);

        Assert.Equal(["000000010000000000000001", "000000010000000000000002.00000028.backup", "00000002.history"], files.Select(f => f.Name));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1796446410), files[0].Stored);
    }
}
