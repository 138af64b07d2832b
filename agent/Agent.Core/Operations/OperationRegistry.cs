using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core.Operations;

/// <summary>
/// The handle a running operation reports through. Every change publishes a new snapshot and wakes
/// the watchers; a watcher that falls behind simply sees the latest state (progress coalesces).
/// </summary>
public sealed class OperationHandle
{
    private const double MinProgressStep = 0.5;
    private readonly object _gate = new();
    private readonly TimeProvider _time;
    private OperationSnapshot _snapshot;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal OperationHandle(OperationSnapshot initial, TimeProvider time)
    {
        _snapshot = initial;
        _time = time;
    }

    public string Id => _snapshot.Id;

    public OperationSnapshot Snapshot
    {
        get
        {
            lock (_gate)
            {
                return _snapshot;
            }
        }
    }

    /// <summary>
    /// pgBackRest reports every file (thousands per backup or restore); a step under half a point with the same phase is
    /// not published, so watchers get at most ~200 progress messages and the agent's CPU stays with pgBackRest.
    /// </summary>
    public void ReportProgress(double percent, string? phase = null) =>
        Update(s =>
        {
            var next = Math.Clamp(percent, 0, 100);
            var samePhase = phase is null || phase == s.Phase;
            return samePhase && s.Percent >= 0 && Math.Abs(next - s.Percent) < MinProgressStep && next < 100
                ? s
                : s with { Percent = next, Phase = phase ?? s.Phase };
        });

    public void ReportPhase(string phase) => Update(s => s with { Phase = phase });

    public void AddWarning(string warning) =>
        Update(s => s.Warnings.Contains(warning) ? s : s with { Warnings = [.. s.Warnings, warning] });

    internal void Complete(object? result) =>
        Update(s => s with { State = OperationState.Succeeded, Percent = 100, Phase = "done", Result = result, Finished = _time.GetUtcNow() });

    internal void Fail(Exception exception)
    {
        var error = OperationError.From(exception);
        var state = error.Kind == AgentErrorKind.Cancelled ? OperationState.Cancelled : OperationState.Failed;
        Update(s => s with { State = state, Phase = "failed", Error = error, Finished = _time.GetUtcNow() });
    }

    /// <summary>Waits until the snapshot differs from <paramref name="seen"/> (or returns at once if it already does).</summary>
    internal async Task<OperationSnapshot> WaitForChangeAsync(OperationSnapshot seen, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task changed;
            lock (_gate)
            {
                if (!ReferenceEquals(_snapshot, seen))
                {
                    return _snapshot;
                }

                changed = _changed.Task;
            }

            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void Update(Func<OperationSnapshot, OperationSnapshot> change)
    {
        TaskCompletionSource wake;
        lock (_gate)
        {
            if (_snapshot.IsFinished)
            {
                return; // a finished operation never changes again
            }

            var next = change(_snapshot);
            if (next == _snapshot)
            {
                return;
            }

            _snapshot = next;
            wake = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        wake.TrySetResult();
    }
}

/// <summary>
/// Holds the agent's long operations (a singleton: gRPC services are per call). Backups and restores
/// share one exclusive lane: a second one is refused at once, naming the one that runs.
/// </summary>
public sealed partial class OperationRegistry(TimeProvider time, ILogger<OperationRegistry> logger) : IDisposable
{
    private const int FinishedToKeep = 200;

    private readonly object _gate = new();
    private readonly Dictionary<string, OperationHandle> _operations = new(StringComparer.Ordinal);
    private readonly Queue<string> _finishedOrder = new();
    private readonly CancellationTokenSource _shutdown = new();
    private OperationHandle? _exclusive;

    /// <summary>The operation holding the exclusive lane, if any.</summary>
    public OperationSnapshot? Running
    {
        get
        {
            lock (_gate)
            {
                return _exclusive?.Snapshot;
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="work"/> in the background if the lane is free; otherwise throws ABORTED
    /// naming the running operation. The work's result becomes the operation's result.
    /// </summary>
    public OperationSnapshot StartExclusive(OperationKind kind, string description, Func<OperationHandle, CancellationToken, Task<object?>> work)
    {
        OperationHandle handle;
        lock (_gate)
        {
            if (_exclusive is { } running)
            {
                var r = running.Snapshot;
                var progress = r.Percent >= 0 ? $", {r.Percent:F0}% done" : "";
                throw new AgentException(AgentErrorKind.Aborted,
                    $"Cannot start {description}: {r.Description} (operation {r.Id}, started {r.Started:u}{progress}) is running.",
                    $"Wait for it to finish (WatchOperation {r.Id}) and try again.");
            }

            var id = $"{kind.ToString().ToLowerInvariant()}-{time.GetUtcNow():yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}";
            handle = new OperationHandle(
                new OperationSnapshot(id, kind, description, OperationState.Running, time.GetUtcNow(), null, -1, "starting", [], null, null),
                time);
            _operations[id] = handle;
            _exclusive = handle;
        }

        Log.OperationStarted(logger, handle.Id, description);
        _ = RunAsync(handle, work);
        return handle.Snapshot;
    }

    public OperationSnapshot Get(string id)
    {
        lock (_gate)
        {
            return _operations.TryGetValue(id, out var handle)
                ? handle.Snapshot
                : throw AgentException.NotFound($"Operation '{id}' is unknown to this agent.",
                    "Operations are kept in memory: an agent restart forgets them. List backups to see what completed.");
        }
    }

    /// <summary>Yields the current snapshot, then every change, ending after the final one.</summary>
    public async IAsyncEnumerable<OperationSnapshot> WatchAsync(string id,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        OperationHandle handle;
        lock (_gate)
        {
            if (!_operations.TryGetValue(id, out handle!))
            {
                throw AgentException.NotFound($"Operation '{id}' is unknown to this agent.");
            }
        }

        var current = handle.Snapshot;
        yield return current;
        while (!current.IsFinished)
        {
            current = await handle.WaitForChangeAsync(current, cancellationToken).ConfigureAwait(false);
            yield return current;
        }
    }

    public void Dispose()
    {
        _shutdown.Cancel();
        _shutdown.Dispose();
    }

    private async Task RunAsync(OperationHandle handle, Func<OperationHandle, CancellationToken, Task<object?>> work)
    {
        await Task.Yield(); // never run the work on the caller's thread
        object? result = null;
        Exception? failure = null;
        try
        {
            result = await work(handle, _shutdown.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = ex;
        }

        // Free the lane before publishing the end, so a watcher that sees "succeeded" can start the next one.
        lock (_gate)
        {
            if (ReferenceEquals(_exclusive, handle))
            {
                _exclusive = null;
            }

            _finishedOrder.Enqueue(handle.Id);
            while (_finishedOrder.Count > FinishedToKeep)
            {
                _operations.Remove(_finishedOrder.Dequeue());
            }
        }

        if (failure is null)
        {
            handle.Complete(result);
            Log.OperationSucceeded(logger, handle.Id);
        }
        else
        {
            handle.Fail(failure);
            Log.OperationFailed(logger, handle.Id, failure.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.OperationStarted, EventName = nameof(LogEvents.OperationStarted), Level = LogLevel.Information, Message = "Operation {Id} started: {Description}")]
        public static partial void OperationStarted(ILogger logger, string id, string description);

        [LoggerMessage(EventId = LogEvents.OperationSucceeded, EventName = nameof(LogEvents.OperationSucceeded), Level = LogLevel.Information, Message = "Operation {Id} succeeded")]
        public static partial void OperationSucceeded(ILogger logger, string id);

        [LoggerMessage(EventId = LogEvents.OperationFailed, EventName = nameof(LogEvents.OperationFailed), Level = LogLevel.Warning, Message = "Operation {Id} failed: {Error}")]
        public static partial void OperationFailed(ILogger logger, string id, string error);
    }
}
