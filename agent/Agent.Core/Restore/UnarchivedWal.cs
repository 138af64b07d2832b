using System.Buffers.Binary;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Backrest.Agent.Core.Restore;

/// <summary>
/// WAL that lives only in pg_wal: what PostgreSQL wrote after the last archived segment (the segment in
/// progress at a crash or an immediate stop, and any .ready segment the archiver never pushed).
/// pgBackRest's restore empties pg_wal, so an in-place restore would silently lose these commits.
/// The agent sets them aside before the restore and puts them back after it: PostgreSQL reads pg_wal
/// whenever restore_command has nothing, so recovery replays them after the archive.
/// </summary>
public static partial class UnarchivedWal
{
    /// <summary>
    /// Segments not marked <c>.done</c> whose first page carries their own address. Recycled segments
    /// (renamed old files waiting for reuse) carry an older address and are skipped: they hold no new WAL.
    /// </summary>
    public static IReadOnlyList<string> Find(string dataDirectory)
    {
        var walDir = Path.Combine(dataDirectory, "pg_wal");
        if (!Directory.Exists(walDir))
        {
            return [];
        }

        var found = new List<string>();
        foreach (var path in Directory.EnumerateFiles(walDir))
        {
            var name = Path.GetFileName(path);
            if (!SegmentName().IsMatch(name) || File.Exists(Path.Combine(walDir, "archive_status", name + ".done")))
            {
                continue;
            }

            if (HoldsOwnWal(path, name))
            {
                found.Add(path);
            }
        }

        found.Sort(StringComparer.Ordinal);
        return found;
    }

    /// <summary>Copies the segments to <paramref name="holding"/> (same owner, mode 0600) and returns the copies.</summary>
    public static IReadOnlyList<string> SetAside(IReadOnlyList<string> segments, string holding)
    {
        Directory.CreateDirectory(holding);
        var copies = new List<string>();
        foreach (var segment in segments)
        {
            var copy = Path.Combine(holding, Path.GetFileName(segment));
            File.Copy(segment, copy, overwrite: true);
            copies.Add(copy);
        }

        return copies;
    }

    /// <summary>Puts the set-aside segments into the restored pg_wal (never over a file the restore wrote).</summary>
    public static int PutBack(string holding, string dataDirectory)
    {
        var walDir = Path.Combine(dataDirectory, "pg_wal");
        Directory.CreateDirectory(walDir);
        var count = 0;
        foreach (var copy in Directory.EnumerateFiles(holding))
        {
            var target = Path.Combine(walDir, Path.GetFileName(copy));
            if (File.Exists(target))
            {
                continue;
            }

            File.Copy(copy, target);
            File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            count++;
        }

        return count;
    }

    /// <summary>
    /// A WAL page header starts with magic (2 bytes), info (2), timeline (4), then the page's own LSN (8,
    /// little-endian). A segment written under its current name has its start LSN there.
    /// </summary>
    internal static bool HoldsOwnWal(string path, string name)
    {
        Span<byte> header = stackalloc byte[16];
        long size;
        try
        {
            using var file = File.OpenRead(path);
            size = file.Length;
            if (file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length)
            {
                return false;
            }
        }
        catch (IOException)
        {
            return false;
        }

        if (size <= 0 || (size & (size - 1)) != 0)
        {
            return false; // WAL segment sizes are powers of two
        }

        var log = ulong.Parse(name.AsSpan(8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var seg = ulong.Parse(name.AsSpan(16, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        var segmentsPerLog = 0x1_0000_0000UL / (ulong)size;
        var startLsn = ((log * segmentsPerLog) + seg) * (ulong)size;
        return BinaryPrimitives.ReadUInt64LittleEndian(header[8..]) == startLsn;
    }

    [GeneratedRegex(@"^[0-9A-F]{24}\z")]
    private static partial Regex SegmentName();
}
