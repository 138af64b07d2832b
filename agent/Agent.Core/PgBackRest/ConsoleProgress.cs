using System.Globalization;
using System.Text.RegularExpressions;

namespace Backrest.Agent.Core.PgBackRest;

/// <summary>
/// Reads progress from pgBackRest's detail-level console, e.g.
/// <c>P01 DETAIL: backup file /data/base/5/1255 (768KB, 3.42%) checksum ...</c> and
/// <c>P01 DETAIL: restore file /data/base/5/1255 (768KB, 45%) ...</c> (2.45 has no progress in info).
/// </summary>
public static partial class ConsoleProgress
{
    public static double? ParsePercent(string line)
    {
        var match = PercentPattern().Match(line);
        return match.Success && double.TryParse(match.Groups[1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var percent)
            ? percent
            : null;
    }

    /// <summary>The INFO message of a line (the phase a person wants to see), without timestamp and process id.</summary>
    public static string? ParseInfo(string line)
    {
        var match = InfoPattern().Match(line);
        return match.Success ? match.Groups[1].Value.Trim() : null;
    }

    /// <summary>
    /// The label of the backup this command took: "P00   INFO: new backup label = 20261124-114826F_20261124-114848I".
    /// Read from the command's own output, so a backup taken meanwhile by anyone else is never mistaken for it.
    /// </summary>
    public static string? ParseNewBackupLabel(string line) =>
        NewBackupLabel().Match(line) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>The repository and backup set a restore uses: "P00   INFO: repo2: restore backup set 20261124-114826F, recovery ...".</summary>
    public static (int Repo, string Label)? ParseRestoredSet(string line) =>
        RestoredSet().Match(line) is { Success: true } m ? (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), m.Groups[2].Value) : null;

    /// <summary>"backup command begin 2.45: --config=..." lists every option: not a phase to show (nor to log twice).</summary>
    public static bool IsCommandBoundary(string info) => CommandBoundary().IsMatch(info);

    [GeneratedRegex(@"^[a-z-]+ command (begin|end)")]
    private static partial Regex CommandBoundary();

    [GeneratedRegex(@"(?:backup|restore) file .*\([^,()]*, (\d+(?:\.\d+)?)%\)")]
    private static partial Regex PercentPattern();

    [GeneratedRegex(@"P\d+\s+INFO: new backup label = ([0-9]{8}-[0-9]{6}F(?:_[0-9]{8}-[0-9]{6}[DI])?)\s*$")]
    private static partial Regex NewBackupLabel();

    [GeneratedRegex(@"P\d+\s+INFO: repo([1-9]): restore backup set ([0-9]{8}-[0-9]{6}F(?:_[0-9]{8}-[0-9]{6}[DI])?)\b")]
    private static partial Regex RestoredSet();

    [GeneratedRegex(@"P\d+\s+INFO: (.*)$")]
    private static partial Regex InfoPattern();
}
