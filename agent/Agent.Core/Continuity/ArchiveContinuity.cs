namespace Backrest.Agent.Core.Continuity;

/// <summary>A file of the repository's archive: its name without pgBackRest's "-checksum.ext" suffix, and when it was stored.</summary>
public sealed record ArchivedFile(string Name, DateTimeOffset? Stored);

/// <summary>
/// A run of segments missing from the archive. <paramref name="After"/> is the last segment archived before it (null when
/// the run starts at the window's first segment) and <paramref name="Since"/> when that one was stored: the gap has
/// existed since then.
/// </summary>
public sealed record ArchiveGap(string FirstMissing, string LastMissing, long Count, string? After, DateTimeOffset? Since)
{
    public string Describe() =>
        (Count == 1 ? $"1 WAL segment missing ({FirstMissing})" : $"{Count} WAL segments missing ({FirstMissing} to {LastMissing})") +
        (After is null ? "" : $", since {Since:yyyy-MM-dd HH:mm:ss} UTC (after {After} was archived)");
}

/// <summary>
/// What the archive itself holds between the oldest backup's first WAL segment and the newest archived one, on the
/// timelines a restore to the newest timeline reads. A restore to latest stops silently at the first gap
/// (pgBackRest's check does not see it), so the recovery window ends at <see cref="LastContiguous"/>.
/// </summary>
public sealed record ArchiveContinuity(
    string ArchiveId,
    string? From,
    string? Newest,
    string? LastContiguous,
    DateTimeOffset? LastContiguousStored,
    IReadOnlyList<ArchiveGap> Gaps,
    IReadOnlyList<string> Problems,
    DateTimeOffset CheckedAt)
{
    public long MissingSegments => Gaps.Sum(g => g.Count);

    /// <summary>Whether a restore to latest reaches the newest archived segment.</summary>
    public bool Continuous => Gaps.Count == 0 && Problems.Count == 0;

    /// <summary>One sentence for check and status: what is missing, since when, and what to do.</summary>
    public string Describe()
    {
        var parts = Gaps.Select(g => g.Describe()).Concat(Problems).ToList();
        if (parts.Count == 0)
        {
            return $"archive {ArchiveId} continuous from {From ?? "-"} to {Newest ?? "-"}";
        }

        return $"archive {ArchiveId} has a gap: {string.Join("; ", parts)}. A restore to latest stops at {LastContiguous ?? "the oldest backup's start"}, " +
               "not at the newest archived segment. Copy the missing files back if PostgreSQL's pg_wal or another repository still has them; " +
               "otherwise take a full backup now so that points after the gap are restorable.";
    }

    /// <summary>
    /// Finds every gap from <paramref name="start"/> (the oldest backup's first segment) to the newest segment on the
    /// newest timeline's path. <paramref name="histories"/> maps a timeline to its parsed history file, for those that
    /// were read; the newest timeline's file is needed when it is above 1.
    /// </summary>
    public static ArchiveContinuity Analyze(
        string archiveId,
        IReadOnlyList<ArchivedFile> files,
        IReadOnlyDictionary<uint, IReadOnlyList<TimelineSwitch>> histories,
        string? start,
        long segmentSize,
        DateTimeOffset checkedAt)
    {
        var stored = new Dictionary<WalSegment, DateTimeOffset?>();
        uint newestTimeline = 0;
        foreach (var file in files)
        {
            if (WalSegment.TryParse(file.Name, segmentSize, out var segment))
            {
                stored[segment] = file.Stored;
                newestTimeline = Math.Max(newestTimeline, segment.Timeline);
            }
            else if (TimelineHistory.TimelineOfFile(file.Name) is { } timeline)
            {
                newestTimeline = Math.Max(newestTimeline, timeline);
            }
        }

        var problems = new List<string>();
        var path = TimelinePath(newestTimeline, histories, segmentSize, stored, problems);
        var onPath = stored.Keys.Where(s => TimelineAt(path, s.Number) == s.Timeline).ToList();
        if (start is null || onPath.Count == 0)
        {
            var newestAny = onPath.Count == 0 ? (WalSegment?)null : onPath.MaxBy(s => s.Number);
            var name = newestAny?.Name(segmentSize);
            return new ArchiveContinuity(archiveId, null, name, name, newestAny is { } n ? stored[n] : null, [], problems, checkedAt);
        }

        var first = WalSegment.Parse(start, segmentSize).Number;
        var newest = onPath.MaxBy(s => s.Number);
        var gaps = new List<ArchiveGap>();
        WalSegment? previous = null;
        WalSegment? gapStart = null;
        for (var number = first; number <= newest.Number; number++)
        {
            var wanted = new WalSegment(TimelineAt(path, number), number);
            if (!stored.ContainsKey(wanted))
            {
                gapStart ??= wanted;
                continue;
            }

            if (gapStart is { } missing)
            {
                var last = new WalSegment(TimelineAt(path, number - 1), number - 1);
                gaps.Add(new ArchiveGap(missing.Name(segmentSize), last.Name(segmentSize), (long)(number - missing.Number),
                    previous?.Name(segmentSize), previous is { } p ? stored[p] : null));
                gapStart = null;
            }

            previous = wanted;
        }

        // The first gap ends the window: its last segment is the one archived just before it.
        WalSegment? lastContiguous = newest;
        if (gaps.Count > 0)
        {
            lastContiguous = first == WalSegment.Parse(gaps[0].FirstMissing, segmentSize).Number
                ? null
                : WalSegment.Parse(gaps[0].After!, segmentSize);
        }

        return new ArchiveContinuity(archiveId, start, newest.Name(segmentSize), lastContiguous?.Name(segmentSize),
            lastContiguous is { } c ? stored[c] : null, gaps, problems, checkedAt);
    }

    /// <summary>Each timeline on the newest one's path and the segment number where it begins, oldest first.</summary>
    private static List<(uint Timeline, ulong Begin)> TimelinePath(
        uint newest,
        IReadOnlyDictionary<uint, IReadOnlyList<TimelineSwitch>> histories,
        long segmentSize,
        Dictionary<WalSegment, DateTimeOffset?> stored,
        List<string> problems)
    {
        if (newest <= 1)
        {
            return [(Math.Max(newest, 1), 0)];
        }

        if (!histories.TryGetValue(newest, out var switches))
        {
            // Without the history file a restore cannot follow the switch: only the newest timeline's own segments count.
            problems.Add($"timeline history file {TimelineHistory.FileName(newest)} is missing, so a restore cannot follow timeline {newest}");
            var own = stored.Keys.Where(s => s.Timeline == newest).Select(s => s.Number).DefaultIfEmpty(0UL).Min();
            return [(newest, own)];
        }

        var path = new List<(uint, ulong)>();
        ulong begin = 0;
        foreach (var change in switches)
        {
            path.Add((change.Timeline, begin));
            // PostgreSQL reads the segment holding the switch point from the new timeline.
            begin = WalSegment.NumberOf(change.SwitchLsn, segmentSize);
        }

        path.Add((newest, begin));
        return path;
    }

    private static uint TimelineAt(List<(uint Timeline, ulong Begin)> path, ulong number)
    {
        var timeline = path[0].Timeline;
        foreach (var (candidate, begin) in path)
        {
            if (begin <= number)
            {
                timeline = candidate;
            }
        }

        return timeline;
    }
}
