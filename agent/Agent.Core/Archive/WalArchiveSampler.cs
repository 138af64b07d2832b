using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Postgres;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core.Archive;

/// <summary>
/// What the pod itself says about WAL archiving at <see cref="SampledAt"/>: the archive_status directory, pg_stat_archiver,
/// pgBackRest's async error files and the pg_wal volume.
/// </summary>
/// <param name="Archiver">Null while PostgreSQL does not answer.</param>
/// <param name="WalSegmentSize">wal_segment_size in bytes; null until PostgreSQL answered once.</param>
/// <param name="AsyncErrorFiles">
/// <c>*.error</c> files in the async archiver's spool (<c>&lt;spool&gt;/archive/&lt;stanza&gt;/out</c>): a push the
/// background process failed. Null when async archiving is off or the spool cannot be read.
/// </param>
public sealed record WalArchiveSample(
    DateTimeOffset SampledAt,
    ReadyBacklog Ready,
    ArchiverStats? Archiver,
    int? AsyncErrorFiles,
    WalVolumeOutlook WalVolume,
    long? WalSegmentSize);

/// <summary>
/// Samples <see cref="WalArchiveSample"/> every Agent:Status:SampleIntervalSeconds in the background, so that a metrics
/// scrape reads numbers in memory instead of listing pg_wal/archive_status and querying PostgreSQL each time (with a
/// large backlog or a slow PostgreSQL the scrape would wait for both). Each sample also feeds the pg_wal volume forecast.
/// </summary>
public sealed partial class WalArchiveSampler(
    AgentOptions options,
    PostgresClient postgres,
    WalVolumeForecast walVolume,
    TimeProvider time,
    ILogger<WalArchiveSampler> logger) : BackgroundService
{
    private WalArchiveSample? _last;
    private long? _segmentSize;
    private bool _failing;

    /// <summary>The newest sample; null before the first (the first is taken as the agent starts).</summary>
    public WalArchiveSample? Last => Volatile.Read(ref _last);

    public async Task<WalArchiveSample> SampleAsync(CancellationToken cancellationToken)
    {
        var archiver = postgres.GetArchiverStatsAsync(cancellationToken);
        var now = time.GetUtcNow();
        var ready = ReadyBacklog.Read(options.Postgres.DataDirectory, now);
        walVolume.Sample(now, ready);
        var stats = await archiver.ConfigureAwait(false);
        // Fixed at initdb: asked until PostgreSQL answers once.
        _segmentSize ??= stats is null ? null : await postgres.GetWalSegmentSizeAsync(cancellationToken).ConfigureAwait(false);
        var sample = new WalArchiveSample(now, ready, stats, CountAsyncErrors(), walVolume.Current(), _segmentSize);
        Volatile.Write(ref _last, sample);
        return sample;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Status.SampleIntervalSeconds), time);
        do
        {
            try
            {
                await SampleAsync(stoppingToken).ConfigureAwait(false);
                _failing = false;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The last sample stays (its time says how old it is); the next tick tries again. Logged once per
                // failing stretch, not every few seconds.
                if (!_failing)
                {
                    Log.SampleFailed(logger, ex);
                }

                _failing = true;
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private int? CountAsyncErrors()
    {
        if (!options.PgBackRest.ArchiveAsync)
        {
            return null;
        }

        // pgBackRest creates the directory with the first async push: none yet means no error yet.
        var outDirectory = new DirectoryInfo(Path.Combine(options.PgBackRest.SpoolPath, "archive", options.Stanza, "out"));
        try
        {
            return outDirectory.Exists ? outDirectory.EnumerateFiles("*.error").Count() : 0;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.WalArchiveSampleFailed, EventName = nameof(LogEvents.WalArchiveSampleFailed), Level = LogLevel.Warning,
            Message = "Sampling the WAL backlog and pg_stat_archiver for metrics failed; the previous sample stays until the next one.")]
        public static partial void SampleFailed(ILogger logger, Exception ex);
    }
}
