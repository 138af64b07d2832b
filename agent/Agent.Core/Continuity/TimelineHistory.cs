using System.Globalization;

namespace Backrest.Agent.Core.Continuity;

/// <summary>One line of a timeline history file: <paramref name="Timeline"/> ended at <paramref name="SwitchLsn"/>.</summary>
public sealed record TimelineSwitch(uint Timeline, string SwitchLsn);

/// <summary>
/// PostgreSQL's <c>NNNNNNNN.history</c>: one line per ancestor timeline, "parentTLI &lt;tab&gt; switchpoint &lt;tab&gt; reason",
/// oldest first. Recovery to the newest timeline reads each segment from the newest timeline that had begun by then
/// (PostgreSQL's XLogFileReadAnyTLI), so this file says which timeline every needed segment is on.
/// </summary>
public static class TimelineHistory
{
    public static uint? TimelineOfFile(string name) =>
        name.Length == 16 && name.EndsWith(".history", StringComparison.Ordinal) &&
        uint.TryParse(name.AsSpan(0, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var timeline)
            ? timeline
            : null;

    public static string FileName(uint timeline) => $"{timeline:X8}.history";

    public static IReadOnlyList<TimelineSwitch> Parse(string content)
    {
        var switches = new List<TimelineSwitch>();
        foreach (var raw in content.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var fields = line.Split((char[])['\t', ' '], 3, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2 || !uint.TryParse(fields[0], CultureInfo.InvariantCulture, out var timeline))
            {
                throw new FormatException($"Timeline history line '{line}' is not 'timeline<TAB>switch LSN<TAB>reason'.");
            }

            WalSegment.ParseLsn(fields[1]);
            switches.Add(new TimelineSwitch(timeline, fields[1]));
        }

        return switches;
    }
}
