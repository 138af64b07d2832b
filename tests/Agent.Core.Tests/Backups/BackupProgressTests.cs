using Backrest.Agent.Core.Backups;
using Microsoft.Extensions.Time.Testing;

namespace Backrest.Agent.Core.Tests.Backups;

/// <summary>
/// The info poll of pgBackRest &gt;= 2.48 over a scripted, slow source: each read is a call the test answers when it
/// chooses, on a fake clock. (pgBackRest here is 2.45, which has no progress in info.)
/// </summary>
public class BackupProgressTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    /// <summary>A progress source whose reads wait for the test to answer them.</summary>
    private sealed class ScriptedSource
    {
        private readonly SemaphoreSlim _started = new(0);
        private TaskCompletionSource<double?>? _pending;

        public int Reads { get; private set; }

        public int MostAtOnce { get; private set; }

        private int _inFlight;

        public Task<double?> ReadAsync(CancellationToken cancellationToken)
        {
            Reads++;
            MostAtOnce = Math.Max(MostAtOnce, Interlocked.Increment(ref _inFlight));
            _pending = new TaskCompletionSource<double?>(TaskCreationOptions.RunContinuationsAsynchronously);
            cancellationToken.Register(() => _pending.TrySetCanceled(cancellationToken));
            _started.Release();
            return _pending.Task;
        }

        public async Task<bool> ReadStartedAsync(TimeSpan within) => await _started.WaitAsync(within);

        public void Answer(double? percent)
        {
            Interlocked.Decrement(ref _inFlight);
            _pending!.SetResult(percent);
        }
    }

    [Fact]
    public async Task PollAsync_SlowSource_OneReadAtATimeAndNeverBackwardsAndNeverHundred()
    {
        var time = new FakeTimeProvider();
        var source = new ScriptedSource();
        var reported = new List<double>();
        var progress = new BackupProgress((percent, _) => { lock (reported) { reported.Add(percent); } });
        using var stop = new CancellationTokenSource();
        var poll = progress.PollAsync(source.ReadAsync, Interval, time, stop.Token);

        // First tick: one read starts and stays slow while 10 s (five ticks) pass.
        await NextReadAsync(time, source);
        for (var i = 0; i < 5; i++)
        {
            time.Advance(Interval);
        }

        Assert.False(await source.ReadStartedAsync(TimeSpan.FromMilliseconds(300)), "a second read started while the first was running");

        source.Answer(40);
        await WaitForAsync(() => progress.Last == 40);

        // The next read starts an interval after the previous one returned; a lower figure is not passed on.
        await NextReadAsync(time, source);
        source.Answer(30);
        await NextReadAsync(time, source);
        source.Answer(null); // lock not held (yet or any more)
        await NextReadAsync(time, source);
        source.Answer(100); // size-cplt == size: copied, but the backup has not finished
        await WaitForAsync(() => progress.Last == BackupProgress.MaxBeforeResult);

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => poll);
        Assert.Equal(1, source.MostAtOnce);
        Assert.Equal(4, source.Reads);
        lock (reported)
        {
            Assert.Equal([40, BackupProgress.MaxBeforeResult], reported);
        }
    }

    [Fact]
    public async Task PollAsync_ReadFails_NextTickReadsAgain()
    {
        var time = new FakeTimeProvider();
        var reads = 0;
        var progress = new BackupProgress((_, _) => { });
        using var stop = new CancellationTokenSource();
        var poll = progress.PollAsync(
            _ => ++reads == 1 ? throw new InvalidOperationException("info failed") : Task.FromResult<double?>(12.5),
            Interval, time, stop.Token);

        await AdvanceUntilAsync(time, () => progress.Last == 12.5);
        Assert.Equal(2, reads);

        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => poll);
    }

    [Fact]
    public void Report_ConsoleAndInfoDisagree_OnlyIncreasesPassedOn()
    {
        var reported = new List<(double, string?)>();
        var progress = new BackupProgress((percent, phase) => reported.Add((percent, phase)));

        progress.Report(0, "starting backup");
        progress.Report(12.5, "copying files");
        progress.Report(11, "copying files");
        progress.Report(12.5);
        progress.Report(100, "copying files");
        progress.Report(50);

        Assert.Equal([(0, "starting backup"), (12.5, "copying files"), (BackupProgress.MaxBeforeResult, "copying files")], reported);
    }

    /// <summary>
    /// Moves the fake clock an interval at a time until the next read starts: the poll registers its wait on the clock
    /// only after the previous read's continuation ran, so a single move could come before it.
    /// </summary>
    private static async Task NextReadAsync(FakeTimeProvider time, ScriptedSource source)
    {
        for (var i = 0; i < 100; i++)
        {
            time.Advance(Interval);
            if (await source.ReadStartedAsync(TimeSpan.FromMilliseconds(50)))
            {
                return;
            }
        }

        Assert.Fail("the poll started no read");
    }

    private static async Task AdvanceUntilAsync(FakeTimeProvider time, Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            time.Advance(Interval);
            await Task.Delay(50);
        }

        Assert.True(condition(), "the poll did not get there");
    }

    /// <summary>The poll's continuations run on the thread pool after the fake clock moved: wait (bounded) for their effect.</summary>
    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var limit = new CancellationTokenSource(Patience);
        while (!condition())
        {
            await Task.Delay(10, limit.Token);
        }
    }
}
