using Backrest.Agent.Core.PgBackRest;

namespace Backrest.Agent.Core.Restore;

/// <summary>What one repository can restore to: from the end of its oldest backup to its newest archived WAL.</summary>
public sealed record RecoveryWindow(
    int Repo,
    DateTimeOffset? EarliestTime,
    string? EarliestBackup,
    string? EarliestLsn,
    string? LatestWal,
    DateTimeOffset? LatestTime)
{
    public static RecoveryWindow For(StanzaInfo info, int repo, string? lastArchivedWal, DateTimeOffset? lastArchivedTime)
    {
        var oldest = info.Backups.Where(b => b.RepoKey == repo).MinBy(b => b.Stop);
        // The newest archive of the current database (a stanza-upgrade starts a new archive id).
        var currentDb = info.Databases.Where(d => d.RepoKey == repo).MaxBy(d => d.Id);
        var archive = info.Archives.Where(a => a.RepoKey == repo && (currentDb is null || a.DatabaseId == currentDb.Id)).LastOrDefault();
        var latestWal = archive?.Max;
        // The archiver's last time applies only if that segment is the repository's newest, or a file archived right after
        // it that is named after it (a backup that starts and stops in one segment archives that segment, then
        // "<segment>.<offset>.backup", which sorts after it).
        DateTimeOffset? latestTime = latestWal is not null && lastArchivedWal is not null &&
            (lastArchivedWal == latestWal || lastArchivedWal.StartsWith(latestWal + ".", StringComparison.Ordinal))
                ? lastArchivedTime
                : null;
        return new RecoveryWindow(repo, oldest?.Stop, oldest?.Label, oldest?.LsnStop, latestWal, latestTime);
    }

    public string Describe() => EarliestTime is null
        ? $"repo{Repo} holds no backup, so nothing can be restored from it"
        : $"repo{Repo} can restore from {EarliestTime:yyyy-MM-dd HH:mm:ss}+00 (end of backup {EarliestBackup}, lsn {EarliestLsn}) " +
          $"to the end of archived WAL ({LatestWal ?? "none"}{(LatestTime is { } t ? $", archived {t:yyyy-MM-dd HH:mm:ss}+00" : "")})";
}
