namespace Backrest.Agent.Core.Backups;

/// <summary>
/// A backup's percent from two sources, pgBackRest's console (per file) and, from 2.48, the backup lock's copied bytes
/// in <c>info</c>. The two disagree a little, and a file can finish before the bytes are counted, so only increases are
/// passed on: progress never goes backwards. Neither source may say 100: the backup is done only when pgBackRest exits
/// and its result is read, and the operation's completion reports 100.
/// </summary>
public sealed class BackupProgress(Action<double, string?> report)
{
    /// <summary>The most a source may report; 100 comes from the result.</summary>
    public const double MaxBeforeResult = 99.9;

    private readonly Lock _lock = new();
    private double _last = -1;

    /// <summary>The highest percent passed on so far (-1 before the first).</summary>
    public double Last
    {
        get
        {
            lock (_lock)
            {
                return _last;
            }
        }
    }

    public void Report(double percent, string? phase = null)
    {
        var capped = Math.Min(percent, MaxBeforeResult);
        lock (_lock)
        {
            if (!(capped > _last))
            {
                return;
            }

            _last = capped;
            report(capped, phase);
        }
    }

    /// <summary>
    /// Polls <paramref name="read"/> every <paramref name="interval"/> until cancelled, one call at a time: the next wait
    /// starts when the previous call returned, so a slow <c>info</c> (a slow repository) never piles up calls. A failed
    /// read is skipped (progress is best effort; the backup's result decides).
    /// </summary>
    public async Task PollAsync(Func<CancellationToken, Task<double?>> read, TimeSpan interval, TimeProvider time, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Task.Delay(interval, time, cancellationToken).ConfigureAwait(false);
            double? percent;
            try
            {
                percent = await read(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                continue;
            }

            if (percent is { } value)
            {
                Report(value);
            }
        }
    }
}
