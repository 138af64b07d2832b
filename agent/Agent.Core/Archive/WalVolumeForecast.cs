using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Core.Archive;

/// <summary>The pg_wal volume's free bytes and, while the archive backlog grows, the hours until it is full.</summary>
public sealed record WalVolumeOutlook(long? FreeBytes, double? HoursUntilFull);

/// <summary>
/// When a repository blocks archiving, PostgreSQL keeps every segment for all of them and pg_wal grows until the volume
/// is full, which stops PostgreSQL. <see cref="WalArchiveSampler"/> adds each backlog it samples; the growth over the last
/// <see cref="Window"/> divided into the free bytes is the time left. Unknown (absent) until two samples span a minute,
/// and while the backlog is not growing.
/// </summary>
public sealed class WalVolumeForecast(AgentOptions options)
{
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(15);
    private static readonly TimeSpan MinimumSpan = TimeSpan.FromMinutes(1);

    private readonly Lock _gate = new();
    private readonly Queue<(DateTimeOffset At, long Bytes)> _samples = new();

    public void Sample(DateTimeOffset now, ReadyBacklog backlog)
    {
        lock (_gate)
        {
            _samples.Enqueue((now, backlog.Bytes));
            while (_samples.Count > 2 && now - _samples.Peek().At > Window)
            {
                _samples.Dequeue();
            }
        }
    }

    public WalVolumeOutlook Current()
    {
        long? free;
        try
        {
            free = new DriveInfo(Path.Combine(options.Postgres.DataDirectory, "pg_wal")).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException)
        {
            free = null;
        }

        (DateTimeOffset At, long Bytes) first, last;
        lock (_gate)
        {
            if (_samples.Count < 2)
            {
                return new WalVolumeOutlook(free, null);
            }

            first = _samples.Peek();
            last = _samples.Last();
        }

        var span = last.At - first.At;
        var growthPerHour = (last.Bytes - first.Bytes) / span.TotalHours;
        return span < MinimumSpan || growthPerHour <= 0 || free is null
            ? new WalVolumeOutlook(free, null)
            : new WalVolumeOutlook(free, free.Value / growthPerHour);
    }
}
