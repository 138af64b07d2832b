using System.Globalization;

namespace Backrest.Agent.Core.Continuity;

/// <summary>
/// One WAL segment as PostgreSQL names it: timeline, then the segment number split into a log id and a segment within
/// it (8 hex digits each). A log id spans 4 GiB of WAL, so with the default 16 MiB segments it holds 256 segments
/// (00000000..000000FF) and the next segment after ...00FF is the next log id's 00000000.
/// </summary>
public readonly record struct WalSegment(uint Timeline, ulong Number)
{
    public const long DefaultSize = 16L * 1024 * 1024;
    public const int NameLength = 24;

    public static ulong SegmentsPerLog(long segmentSize) => 0x1_0000_0000UL / (ulong)segmentSize;

    /// <summary>Reads a 24-hex-digit segment name; false for anything else (history, backup label, partial segment).</summary>
    public static bool TryParse(string name, long segmentSize, out WalSegment segment)
    {
        segment = default;
        if (name.Length != NameLength ||
            !uint.TryParse(name.AsSpan(0, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var timeline) ||
            !uint.TryParse(name.AsSpan(8, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var log) ||
            !uint.TryParse(name.AsSpan(16, 8), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var seg))
        {
            return false;
        }

        var perLog = SegmentsPerLog(segmentSize);
        if (seg >= perLog)
        {
            return false;
        }

        segment = new WalSegment(timeline, log * perLog + seg);
        return true;
    }

    public static WalSegment Parse(string name, long segmentSize) => TryParse(name, segmentSize, out var segment)
        ? segment
        : throw new FormatException($"'{name}' is not a WAL segment name for {segmentSize} byte segments.");

    /// <summary>The segment that holds <paramref name="lsn"/> ("X/Y", as PostgreSQL prints it).</summary>
    public static ulong NumberOf(string lsn, long segmentSize) => ParseLsn(lsn) / (ulong)segmentSize;

    public static ulong ParseLsn(string lsn)
    {
        var slash = lsn.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 ||
            !uint.TryParse(lsn.AsSpan(0, slash), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var high) ||
            !uint.TryParse(lsn.AsSpan(slash + 1), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var low))
        {
            throw new FormatException($"'{lsn}' is not an LSN (X/Y in hex).");
        }

        return ((ulong)high << 32) | low;
    }

    public string Name(long segmentSize)
    {
        var perLog = SegmentsPerLog(segmentSize);
        return $"{Timeline:X8}{Number / perLog:X8}{Number % perLog:X8}";
    }
}
