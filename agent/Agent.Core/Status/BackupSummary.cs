using Backrest.Agent.Core.PgBackRest;

namespace Backrest.Agent.Core.Status;

/// <summary>How many backups of one type a repository holds and the newest of them (null: none).</summary>
public sealed record BackupTypeSummary(string Type, int Count, BackupInfo? Last);

/// <summary>
/// One repository's catalog reduced to what metrics and alerts read: per backup type, the count and the newest backup.
/// Computed once when an info read is stored, so a scrape reads a dozen numbers instead of walking every backup.
/// </summary>
public sealed record BackupSummary(IReadOnlyList<BackupTypeSummary> Types)
{
    /// <summary>pgBackRest's backup types, in the order they are listed.</summary>
    public static readonly IReadOnlyList<string> BackupTypes = ["full", "diff", "incr"];

    public static BackupSummary Of(StanzaInfo info)
    {
        var counts = BackupTypes.ToDictionary(t => t, _ => 0);
        var last = new Dictionary<string, BackupInfo>();
        foreach (var backup in info.Backups)
        {
            counts[backup.Type] = counts.GetValueOrDefault(backup.Type) + 1;
            if (!last.TryGetValue(backup.Type, out var newest) || backup.Stop > newest.Stop)
            {
                last[backup.Type] = backup;
            }
        }

        return new BackupSummary(counts.Select(c => new BackupTypeSummary(c.Key, c.Value, last.GetValueOrDefault(c.Key))).ToList());
    }
}
