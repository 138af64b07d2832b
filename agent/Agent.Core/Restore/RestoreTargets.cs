using System.Globalization;
using System.Text.RegularExpressions;

namespace Backrest.Agent.Core.Restore;

/// <summary>Parsing of point-in-time targets, strict enough that nothing ambiguous reaches PostgreSQL.</summary>
public static partial class RestoreTargets
{
    /// <summary>
    /// Accepts "YYYY-MM-DD HH:MM:SS[.ffffff][Z|+HH[:MM]]" or the same with 'T' (RFC 3339).
    /// No offset means UTC. Null when unparsable.
    /// </summary>
    public static DateTimeOffset? ParseTime(string text)
    {
        var match = TimePattern().Match(text.Trim());
        if (!match.Success)
        {
            return null;
        }

        var offset = match.Groups["offset"].Value;
        offset = offset switch
        {
            "" or "Z" => "+00:00",
            { Length: 3 } => offset + ":00",
            { Length: 5 } => offset[..3] + ":" + offset[3..],
            _ => offset,
        };
        var normalized = $"{match.Groups["date"].Value}T{match.Groups["time"].Value}{match.Groups["fraction"].Value}{offset}";
        return DateTimeOffset.TryParse(normalized, CultureInfo.InvariantCulture, DateTimeStyles.None, out var value) ? value : null;
    }

    /// <summary>The form pgBackRest and PostgreSQL read unambiguously: UTC with microseconds.</summary>
    public static string FormatTime(DateTimeOffset value) =>
        value.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture) + "+00";

    /// <summary>The whole second (UTC) <paramref name="value"/> falls in, as pgBackRest compares a time target with backup stop times.</summary>
    public static DateTimeOffset TruncateToSecond(DateTimeOffset value)
    {
        var utc = value.ToUniversalTime();
        return new DateTimeOffset(utc.Ticks - (utc.Ticks % TimeSpan.TicksPerSecond), TimeSpan.Zero);
    }

    /// <summary>"16/B374D848" → its 64-bit position; null when not an LSN.</summary>
    public static ulong? ParseLsn(string? text)
    {
        var match = LsnPattern().Match(text?.Trim() ?? "");
        if (!match.Success)
        {
            return null;
        }

        return (ulong.Parse(match.Groups[1].Value, NumberStyles.HexNumber) << 32) | ulong.Parse(match.Groups[2].Value, NumberStyles.HexNumber);
    }

    public static bool IsXid(string text) => XidPattern().IsMatch(text.Trim()) && ulong.TryParse(text.Trim(), out var xid) && xid >= 3;

    /// <summary>Restore point names from pg_create_restore_point: up to 63 bytes, nothing that breaks a config line.</summary>
    public static bool IsRestorePointName(string text) =>
        System.Text.Encoding.UTF8.GetByteCount(text) is > 0 and <= 63 && !text.Any(c => char.IsControl(c) || c is '\'' or '\\' or '"');

    /// <summary>A timeline id as PostgreSQL takes it (decimal or 0x hex, 1 to 0xFFFFFFFF), normalised to decimal.</summary>
    public static string? ParseTimeline(string text)
    {
        if (!TimelinePattern().IsMatch(text))
        {
            return null;
        }

        var parsed = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            ? ulong.Parse(text.AsSpan(2), System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture)
            : ulong.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
        return parsed is >= 1 and <= uint.MaxValue ? parsed.ToString(System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    [GeneratedRegex(@"^(0[xX][0-9A-Fa-f]{1,8}|[0-9]{1,10})\z")]
    private static partial Regex TimelinePattern();

    [GeneratedRegex(@"^(?<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[ T](?<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?<fraction>\.[0-9]{1,6})? *(?<offset>Z|[+-][0-9]{2}(:?[0-9]{2})?)?\z")]
    private static partial Regex TimePattern();

    [GeneratedRegex(@"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\z")]
    private static partial Regex LsnPattern();

    [GeneratedRegex(@"^[0-9]{1,20}\z")]
    private static partial Regex XidPattern();
}
