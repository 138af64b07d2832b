using Backrest.Agent.Core.Archive;
using Backrest.Agent.Core.Continuity;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Postgres;

namespace Backrest.Agent.Core.Restore;

/// <summary>
/// What one repository can restore to: from the end of the oldest backup of its current database to its newest archived
/// WAL, or to the last segment before the first gap in the archive.
/// </summary>
public sealed record RecoveryWindow(
    int Repo,
    DateTimeOffset? EarliestTime,
    string? EarliestBackup,
    string? EarliestLsn,
    string? LatestWal,
    DateTimeOffset? LatestTime)
{
    /// <summary>The first hole in the archive after the window's start; the window ends before it. Null when none is known.</summary>
    public ArchiveGap? Gap { get; init; }

    /// <summary>Segments missing between the window's start and the newest archived one; null until the archive was listed.</summary>
    public long? MissingSegments { get; init; }

    /// <summary>The newest segment the archive holds, gap or not (<see cref="LatestWal"/> stops before a gap).</summary>
    public string? NewestArchivedWal { get; init; }

    public static RecoveryWindow For(StanzaInfo info, int repo, string? lastArchivedWal, DateTimeOffset? lastArchivedTime) =>
        Of(info, repo).WithArchived(lastArchivedWal, lastArchivedTime);

    /// <summary>
    /// What the catalog alone says (no time for the newest segment): one pass over every backup, so the status cache
    /// computes it once per info read (<see cref="Status.RepositoryInfoRead.Window"/>) rather than each reader.
    /// </summary>
    public static RecoveryWindow Of(StanzaInfo info, int repo)
    {
        // The current database is the newest generation: after a stanza-upgrade, backups of the older one hold another
        // PostgreSQL version's data and WAL, so the window starts at the first backup of the current one.
        var currentDb = info.Databases.Where(d => d.RepoKey == repo).MaxBy(d => d.Id);
        var oldest = info.Backups.Where(b => b.RepoKey == repo && (currentDb is null || b.DatabaseId == currentDb.Id)).MinBy(b => b.Stop);
        // The newest archive of the current database (a stanza-upgrade starts a new archive id).
        var archive = info.Archives.Where(a => a.RepoKey == repo && (currentDb is null || a.DatabaseId == currentDb.Id)).LastOrDefault();
        return new RecoveryWindow(repo, oldest?.Stop, oldest?.Label, oldest?.LsnStop, archive?.Max, null);
    }

    /// <summary>
    /// The archiver's last time applies only if that segment is the repository's newest, or a file archived right after
    /// it that is named after it (a backup that starts and stops in one segment archives that segment, then
    /// "&lt;segment&gt;.&lt;offset&gt;.backup", which sorts after it).
    /// </summary>
    private RecoveryWindow WithArchived(string? lastArchivedWal, DateTimeOffset? lastArchivedTime) => this with
    {
        LatestTime = LatestWal is not null && lastArchivedWal is not null &&
            (lastArchivedWal == LatestWal || lastArchivedWal.StartsWith(LatestWal + ".", StringComparison.Ordinal))
                ? lastArchivedTime
                : null,
    };

    /// <summary>
    /// The window from cached info and the agent's archive figures: the newest WAL is the later of the info's archive max
    /// and the last segment the agent acknowledged to PostgreSQL (stored in every repository by then), so the window's
    /// end moves with each push, not only with each cache refresh.
    /// </summary>
    /// <remarks>
    /// With the repository's <paramref name="continuity"/> (its archive as last listed) showing a gap, the window ends at
    /// the segment before the gap: a restore to latest stops there, whatever was archived after it.
    /// </remarks>
    public static RecoveryWindow Current(StanzaInfo? info, int repo, ArchiveStats stats, ArchiverStats? archiver, ArchiveContinuity? continuity) =>
        Current(info is null ? null : Of(info, repo), repo, stats, archiver, continuity);

    /// <summary>The same from the catalog's part already computed (<see cref="Of"/>); null when the catalog is unknown.</summary>
    public static RecoveryWindow Current(RecoveryWindow? catalog, int repo, ArchiveStats stats, ArchiverStats? archiver, ArchiveContinuity? continuity)
    {
        var lastWal = archiver?.LastArchivedWal ?? stats.LastArchivedWal;
        var lastTime = archiver?.LastArchivedTime ?? stats.LastArchivedTime;
        var window = catalog?.WithArchived(lastWal, lastTime) ?? new RecoveryWindow(repo, null, null, null, null, null);
        if (stats.LastArchivedWal is { Length: 24 } pushed && window.LatestWal is { } known && string.CompareOrdinal(pushed, known) > 0)
        {
            window = window with
            {
                LatestWal = pushed,
                LatestTime = lastWal is not null && lastWal.StartsWith(pushed, StringComparison.Ordinal) ? lastTime : null,
            };
        }

        window = window with { NewestArchivedWal = window.LatestWal };
        if (continuity is { Gaps: [var gap, ..] } && window.EarliestTime is not null)
        {
            return window with
            {
                LatestWal = continuity.LastContiguous,
                LatestTime = continuity.LastContiguousStored,
                Gap = gap,
                MissingSegments = continuity.MissingSegments,
            };
        }

        return window with { MissingSegments = continuity?.MissingSegments };
    }

    public string Describe() => EarliestTime is null
        ? $"repo{Repo} holds no backup, so nothing can be restored from it"
        : $"repo{Repo} can restore from {EarliestTime:yyyy-MM-dd HH:mm:ss}+00 (end of backup {EarliestBackup}, lsn {EarliestLsn}) " +
          (Gap is null
              ? $"to the end of archived WAL ({LatestWal ?? "none"}{(LatestTime is { } t ? $", archived {t:yyyy-MM-dd HH:mm:ss}+00" : "")})"
              : $"to {LatestWal ?? "the oldest backup's start"}, where the archive has a gap: {Gap.Describe()}");
}
