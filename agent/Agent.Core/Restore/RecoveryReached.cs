using Backrest.Agent.Core.Continuity;
using Backrest.Agent.Core.Postgres;
using Backrest.Agent.Core.Status;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core.Restore;

/// <summary>Where a restored cluster's recovery ended, against the newest segment its repository had archived then.</summary>
public sealed record RecoveryEnd(
    string OperationId,
    string DataDirectory,
    int Repo,
    string Lsn,
    string Segment,
    string? NewestArchivedWal,
    bool Shortfall,
    DateTimeOffset SeenAt)
{
    /// <summary>A restore to latest: only then is ending before the newest archived segment a shortfall.</summary>
    public bool ToLatest { get; init; } = true;

    public string Describe() => Shortfall
        ? $"The cluster restored by {OperationId} into {DataDirectory} ended recovery at {Lsn} (segment {Segment}), before repo{Repo}'s " +
          $"newest archived segment {NewestArchivedWal}: it lacks the WAL after that point. backrestctl check looks for gaps in the archive."
        : $"The cluster restored by {OperationId} into {DataDirectory}{(ToLatest ? "" : " (to a target)")} ended recovery at {Lsn} (segment {Segment}); " +
          $"repo{Repo}'s newest archived segment was {NewestArchivedWal ?? "unknown"}.";
}

/// <summary>
/// Where an LSN that recovery reached lies against the newest segment the repository has archived now: its segment
/// (named on the newest segment's timeline, or 1 when nothing is archived) and whether it is behind it. One measure for
/// a restored cluster that promoted (<see cref="RecoveryReachedWatcher"/>) and for a restore drill.
/// </summary>
public sealed record ArchiveReach(string? Segment, string? NewestArchivedWal, bool Behind)
{
    /// <param name="lsn">Null when the LSN is unknown: then only the newest archived segment is read.</param>
    public static async Task<ArchiveReach> MeasureAsync(StatusCache cache, ArchiveContinuityScanner continuity, int repo, string? lsn, long segmentSize,
        CancellationToken cancellationToken)
    {
        var info = await cache.RefreshRepositoryAsync(repo, cancellationToken).ConfigureAwait(false);
        var newest = (await continuity.ScanAsync(repo, info, cancellationToken).ConfigureAwait(false))?.Newest;
        if (lsn is null)
        {
            return new ArchiveReach(null, newest, false);
        }

        var reached = WalSegment.NumberOf(lsn, segmentSize);
        var archived = newest is null ? (WalSegment?)null : WalSegment.Parse(newest, segmentSize);
        return new ArchiveReach(new WalSegment(archived?.Timeline ?? 1, reached).Name(segmentSize), newest, archived is { } a && reached < a.Number);
    }
}

/// <summary>
/// After a restore, whoever starts the restored cluster (the pod's PostgreSQL, a person with pg_ctl), the agent watches
/// its data directory until recovery ended and it promoted (PostgreSQL removed recovery.signal), then reads the new
/// timeline's history file (the highest timeline: older ones fetched from the archive during recovery are lower): its
/// last line is the switch point, the LSN recovery reached. Compared with the repository's newest archived segment, a
/// shortfall (a restore to latest that silently stopped at a gap; a restore to a target is meant to stop earlier) is a
/// status warning and a log event. Watches for a day at most.
/// </summary>
public sealed partial class RecoveryReachedWatcher(
    StatusCache cache,
    ArchiveContinuityScanner continuity,
    PostgresClient postgres,
    TimeProvider time,
    ILogger<RecoveryReachedWatcher> logger) : IDisposable
{
    // Cancelled when the agent stops (the container disposes its singletons): ends every watch.
    private readonly CancellationTokenSource _stopping = new();
    private static readonly TimeSpan Patience = TimeSpan.FromDays(1);
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(2);
    private RecoveryEnd? _last;

    /// <summary>The last recovery end seen since the agent started.</summary>
    public RecoveryEnd? Last => Volatile.Read(ref _last);

    /// <summary>Starts watching in the background; history files already there (older timelines) are not this recovery's.</summary>
    public void Watch(string operationId, string dataDirectory, int repo, bool toLatest)
    {
        var pgWal = Path.Combine(dataDirectory, "pg_wal");
        var before = HistoryFiles(pgWal).ToHashSet();
        var stopping = _stopping.Token;
        _ = Task.Run(() => WatchAsync(operationId, dataDirectory, pgWal, repo, toLatest, before, stopping), stopping);
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _stopping.Dispose();
    }

    private async Task WatchAsync(string operationId, string dataDirectory, string pgWal, int repo, bool toLatest, HashSet<string> before,
        CancellationToken stopping)
    {
        try
        {
            var until = time.GetUtcNow() + Patience;
            while (time.GetUtcNow() < until)
            {
                if (!File.Exists(Path.Combine(dataDirectory, "recovery.signal")) &&
                    HistoryFiles(pgWal).Where(f => !before.Contains(f)).Max() is { } created &&
                    TimelineHistory.Parse(await File.ReadAllTextAsync(Path.Combine(pgWal, created), stopping).ConfigureAwait(false)) is [.., var last])
                {
                    await RecordAsync(operationId, dataDirectory, repo, toLatest, last.SwitchLsn, stopping).ConfigureAwait(false);
                    return;
                }

                await Task.Delay(PollInterval, time, stopping).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.WatchFailed(logger, operationId, ex.Message);
        }
        catch (OperationCanceledException)
        {
            // The agent stops.
        }
    }

    private async Task RecordAsync(string operationId, string dataDirectory, int repo, bool toLatest, string lsn, CancellationToken stopping)
    {
        var segmentSize = await postgres.GetWalSegmentSizeAsync(stopping).ConfigureAwait(false) ?? WalSegment.DefaultSize;
        var reach = await ArchiveReach.MeasureAsync(cache, continuity, repo, lsn, segmentSize, stopping).ConfigureAwait(false);
        var end = new RecoveryEnd(operationId, dataDirectory, repo, lsn, reach.Segment!, reach.NewestArchivedWal, toLatest && reach.Behind, time.GetUtcNow())
        {
            ToLatest = toLatest,
        };
        Volatile.Write(ref _last, end);
        if (end.Shortfall)
        {
            Log.Shortfall(logger, end.Describe());
        }
        else
        {
            Log.Reached(logger, end.Describe());
        }
    }

    private static IEnumerable<string> HistoryFiles(string pgWal) =>
        Directory.Exists(pgWal)
            ? Directory.EnumerateFiles(pgWal, "*.history").Select(Path.GetFileName).OfType<string>().Where(n => TimelineHistory.TimelineOfFile(n) is not null)
            : [];

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.RestoreRecoveryShortfall, EventName = nameof(LogEvents.RestoreRecoveryShortfall), Level = LogLevel.Error,
            Message = "{Description}")]
        public static partial void Shortfall(ILogger logger, string description);

        [LoggerMessage(EventId = LogEvents.RestoreRecoveryReached, EventName = nameof(LogEvents.RestoreRecoveryReached), Level = LogLevel.Information,
            Message = "{Description}")]
        public static partial void Reached(ILogger logger, string description);

        [LoggerMessage(EventId = LogEvents.RestoreRecoveryWatchFailed, EventName = nameof(LogEvents.RestoreRecoveryWatchFailed), Level = LogLevel.Warning,
            Message = "Could not tell where the cluster restored by {OperationId} ended recovery: {Error}")]
        public static partial void WatchFailed(ILogger logger, string operationId, string error);
    }
}
