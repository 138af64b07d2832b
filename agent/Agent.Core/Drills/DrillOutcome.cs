using System.Text.RegularExpressions;
using Backrest.Agent.Core.Operations;

namespace Backrest.Agent.Core.Drills;

/// <summary>
/// What a restore drill proved: the backup restored, how long the restore and the replay of the archive took (the
/// recovery time), where recovery stopped against the newest archived WAL, and the check query's first row.
/// </summary>
public sealed record DrillOutcome(
    int Repo,
    string Backup,
    TimeSpan Restore,
    TimeSpan Replay,
    string? RecoveredLsn,
    string? RecoveredWal,
    DateTimeOffset? RecoveredTime,
    string? NewestArchivedWal,
    IReadOnlyList<string> Check) : OperationResult
{
    public override string? BackupLabel => Backup;

    public TimeSpan RecoveryTime => Restore + Replay;

    /// <summary>Recovery stopped before the newest archived segment: a restore to latest would lose what follows.</summary>
    public bool Shortfall { get; init; }
}

/// <summary>Where recovery ended, as PostgreSQL logs it at the end of archive recovery (lc_messages = C).</summary>
public static partial class RecoveryLog
{
    /// <summary>"redo done at 0/5000110 ..." and "last completed transaction was at log time 2026-12-05 05:40:01.123+00".</summary>
    public static (string? Lsn, DateTimeOffset? Time) EndOfRecovery(IEnumerable<string> lines)
    {
        string? lsn = null;
        DateTimeOffset? at = null;
        foreach (var line in lines)
        {
            if (RedoDone().Match(line) is { Success: true } redo)
            {
                lsn = redo.Groups[1].Value;
            }
            else if (LastTransaction().Match(line) is { Success: true } last &&
                     // PostgreSQL writes the offset as "+00"; .NET wants "+00:00".
                     DateTimeOffset.TryParse(ShortOffset().Replace(last.Groups[1].Value.Trim(), "$1:00"), System.Globalization.CultureInfo.InvariantCulture,
                         System.Globalization.DateTimeStyles.AssumeUniversal, out var parsed))
            {
                at = parsed;
            }
        }

        return (lsn, at);
    }

    [GeneratedRegex(@"redo done at ([0-9A-F]+/[0-9A-F]+)")]
    private static partial Regex RedoDone();

    [GeneratedRegex(@"([+-]\d\d)$")]
    private static partial Regex ShortOffset();

    [GeneratedRegex(@"last completed transaction was at log time (.+)$")]
    private static partial Regex LastTransaction();
}
