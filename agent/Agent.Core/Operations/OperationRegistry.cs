using Backrest.Agent.Core.Configuration;
using Microsoft.Extensions.Hosting;
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
    private readonly CancellationTokenSource _cancel;
    private OperationSnapshot _snapshot;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string? _cancelReason;

    private readonly Action<OperationSnapshot> _onFinished;

    /// <param name="onFinished">Called with the final snapshot before any watcher sees it (the history records it).</param>
    internal OperationHandle(OperationSnapshot initial, TimeProvider time, CancellationToken shutdown, Action<OperationSnapshot> onFinished)
    {
        _snapshot = initial;
        _onFinished = onFinished;
        _time = time;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
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

    /// <summary>Ends when the work has ended and its final state is published.</summary>
    internal Task Completion => _done.Task;

    internal CancellationToken CancellationToken => _cancel.Token;

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

    /// <summary>Asks the work to stop (its token is cancelled: pgBackRest gets SIGTERM, then is killed).</summary>
    internal void RequestCancel(string reason)
    {
        lock (_gate)
        {
            _cancelReason ??= reason;
        }

        _cancel.Cancel();
    }

    internal void SignalDone() => _done.TrySetResult();

    internal void MarkRunning() =>
        Update(s => s with { State = OperationState.Running, Phase = "starting", Started = _time.GetUtcNow() });

    internal void Complete(OperationResult? result) =>
        Update(s => s with
        {
            State = OperationState.Succeeded, Percent = 100, Phase = "done", Result = result, BackupLabel = result?.BackupLabel,
            Finished = _time.GetUtcNow(),
        });

    internal void Fail(Exception exception)
    {
        string? reason;
        lock (_gate)
        {
            reason = _cancelReason;
        }

        var error = reason is not null && exception is OperationCanceledException
            ? new OperationError(AgentErrorKind.Cancelled, reason, "Start it again when it is needed.", 0)
            : OperationError.From(exception);
        var state = error.Kind == AgentErrorKind.Cancelled ? OperationState.Cancelled : OperationState.Failed;
        Update(s => s with { State = state, Phase = "failed", Error = error, Finished = _time.GetUtcNow() });
    }

    /// <summary>Ends a queued operation that never ran.</summary>
    internal void Drop(string reason, string hint)
    {
        Update(s => s with
        {
            State = OperationState.Cancelled, Phase = "dropped",
            Error = new OperationError(AgentErrorKind.Cancelled, reason, hint, 0), Finished = _time.GetUtcNow(),
        });
        SignalDone();
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
        OperationSnapshot next;
        lock (_gate)
        {
            if (_snapshot.IsFinished)
            {
                return; // a finished operation never changes again
            }

            next = change(_snapshot);
            if (next == _snapshot)
            {
                return;
            }

            _snapshot = next;
            wake = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            if (next.IsFinished)
            {
                // Under the lock, so whoever sees the end can also read it from the history (after a restart too).
                _onFinished(next);
            }
        }

        wake.TrySetResult();
    }
}

/// <summary>What to run, and how it may wait for the exclusive lane.</summary>
public sealed record OperationRequest(
    OperationKind Kind,
    string Description,
    Func<OperationHandle, CancellationToken, Task<OperationResult?>> Work)
{
    public OperationTrigger Trigger { get; init; } = OperationTrigger.Manual;

    /// <summary>The backup type (full, diff, incr) of a backup: the queue holds one entry per type and repository.</summary>
    public string? BackupType { get; init; }

    public int Repo { get; init; }

    /// <summary>A queued request for which this returns true of an operation that finished first is dropped, unrun.</summary>
    public Func<OperationResult, bool>? IsCoveredBy { get; init; }
}

/// <summary>
/// Owns the agent's long operations (a singleton and a hosted service: gRPC services are per call). Backups, restores,
/// expires and deletes share one exclusive lane, as pgBackRest takes one at a time: a second one is refused at once,
/// naming the one that runs, or waits in a queue (at most one entry per backup type and repository) when the caller
/// asks. When the agent stops, it waits for the running operation for a grace period, then stops it cleanly.
/// Every operation is written to an <see cref="OperationHistory"/> that survives restarts.
/// </summary>
public sealed partial class OperationRegistry : IHostedLifecycleService, IDisposable
{
    /// <summary>How long pgBackRest gets between SIGTERM and SIGKILL when the agent stops it (see ProcessSpec).</summary>
    public static readonly TimeSpan TerminateReserve = TimeSpan.FromSeconds(10);

    private const int FinishedToKeep = 50;

    private readonly object _gate = new();
    private readonly Dictionary<string, OperationHandle> _live = new(StringComparer.Ordinal);
    private readonly Queue<string> _finishedOrder = new();
    private readonly List<(OperationHandle Handle, OperationRequest Request)> _queue = [];
    private readonly CancellationTokenSource _shutdown = new();
    private readonly TimeProvider _time;
    private readonly ILogger<OperationRegistry> _logger;
    private readonly TimeSpan _shutdownGrace;
    private OperationHandle? _exclusive;
    private bool _stopping;
    private bool _disposed;
    private Task? _drained;

    public OperationRegistry(AgentOptions options, OperationDecisions decisions, TimeProvider time, ILogger<OperationRegistry> logger)
    {
        _time = time;
        _logger = logger;
        Decisions = decisions;
        _shutdownGrace = TimeSpan.FromSeconds(options.Operations.ShutdownGraceSeconds);
        History = new OperationHistory(options.Operations.ResolveHistoryPath(options.PgBackRest));
        foreach (var closed in History.CloseInterrupted(time.GetUtcNow()))
        {
            Log.InterruptedByRestart(logger, closed.Id, closed.Description);
        }
    }

    public OperationHistory History { get; }

    public OperationDecisions Decisions { get; }

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

    /// <summary>Operations waiting for the lane, in the order they will run.</summary>
    public IReadOnlyList<OperationSnapshot> Queued
    {
        get
        {
            lock (_gate)
            {
                return _queue.Select(q => q.Handle.Snapshot).ToList();
            }
        }
    }

    /// <summary>
    /// Starts the work in the background if the lane is free. Otherwise: with <paramref name="queueIfBusy"/>, queues it
    /// (or returns the entry already queued for the same backup type and repository); without, throws ABORTED naming the
    /// running operation. The snapshot returned is the operation's state at this moment (running or queued).
    /// </summary>
    public OperationSnapshot Start(OperationRequest request, bool queueIfBusy = false)
    {
        OperationHandle handle;
        OperationSnapshot answer;
        string decision;
        lock (_gate)
        {
            if (_stopping)
            {
                throw new AgentException(AgentErrorKind.Unavailable, $"Cannot start {request.Description}: the agent is stopping.",
                    "Try again once the agent is back.");
            }

            if (_exclusive is null)
            {
                handle = NewHandle(request, OperationState.Running);
                _exclusive = handle;
                decision = OperationDecisions.Started;
            }
            else if (!queueIfBusy)
            {
                Count(request, OperationDecisions.Refused);
                var r = _exclusive.Snapshot;
                var progress = r.Percent >= 0 ? $", {r.Percent:F0}% done" : "";
                throw new AgentException(AgentErrorKind.Aborted,
                    $"Cannot start {request.Description}: {r.Description} (operation {r.Id}, started {r.Started:u}{progress}) is running.",
                    $"Wait for it to finish (WatchOperation {r.Id}) and try again.");
            }
            else if (_queue.FirstOrDefault(q => SameQueueEntry(q.Request, request)) is { Handle: { } waiting })
            {
                Count(request, OperationDecisions.AlreadyQueued);
                return waiting.Snapshot;
            }
            else
            {
                handle = NewHandle(request, OperationState.Queued);
                _queue.Add((handle, request));
                decision = OperationDecisions.Queued;
            }

            // Captured before the work can run, so the caller always sees the operation as it began.
            answer = handle.Snapshot;
        }

        Count(request, decision);
        History.Record(answer);
        if (answer.State == OperationState.Running)
        {
            Log.OperationStarted(_logger, handle.Id, request.Description, request.Trigger);
            _ = RunAsync(handle, request);
        }
        else
        {
            Log.OperationQueued(_logger, handle.Id, request.Description, _exclusive?.Id ?? "");
        }

        return answer;
    }

    /// <summary>Cancels a queued operation, or stops a running one (pgBackRest gets SIGTERM, then is killed).</summary>
    public OperationSnapshot Cancel(string id)
    {
        OperationHandle? handle;
        bool queued;
        lock (_gate)
        {
            if (!_live.TryGetValue(id, out handle))
            {
                throw History.Find(id) is { } record
                    ? AgentException.FailedPrecondition($"Operation {id} already ended ({record.State.ToString().ToLowerInvariant()}).")
                    : UnknownOperation(id);
            }

            var index = _queue.FindIndex(q => ReferenceEquals(q.Handle, handle));
            queued = index >= 0;
            if (queued)
            {
                _queue.RemoveAt(index);
                Retire(handle);
            }
            else if (!ReferenceEquals(_exclusive, handle))
            {
                throw AgentException.FailedPrecondition($"Operation {id} already ended ({handle.Snapshot.State.ToString().ToLowerInvariant()}).");
            }
        }

        Log.CancelRequested(_logger, id);
        if (queued)
        {
            handle.Drop("Cancelled by request before it started.", "Start it again when it is needed.");
            return handle.Snapshot;
        }

        handle.RequestCancel("Cancelled by request: pgBackRest was stopped (SIGTERM).");
        return handle.Snapshot;
    }

    public OperationSnapshot Get(string id)
    {
        lock (_gate)
        {
            if (_live.TryGetValue(id, out var handle))
            {
                return handle.Snapshot;
            }
        }

        return History.Find(id)?.ToSnapshot() ?? throw UnknownOperation(id);
    }

    /// <summary>The history, newest first, with the live state of operations still running or queued.</summary>
    public IReadOnlyList<OperationSnapshot> List(int limit)
    {
        var records = History.List(limit);
        lock (_gate)
        {
            return records.Select(r => _live.TryGetValue(r.Id, out var h) ? h.Snapshot : r.ToSnapshot()).ToList();
        }
    }

    /// <summary>Yields the current snapshot, then every change, ending after the final one.</summary>
    public async IAsyncEnumerable<OperationSnapshot> WatchAsync(string id,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        OperationHandle? handle;
        lock (_gate)
        {
            _live.TryGetValue(id, out handle);
        }

        if (handle is null)
        {
            // Ended before this agent started (or long ago): the history has its final state.
            yield return History.Find(id)?.ToSnapshot() ?? throw UnknownOperation(id);
            yield break;
        }

        var current = handle.Snapshot;
        yield return current;
        while (!current.IsFinished)
        {
            current = await handle.WaitForChangeAsync(current, cancellationToken).ConfigureAwait(false);
            yield return current;
        }
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Runs before any hosted service stops, the web server included: a backup's last step waits for its WAL to be
    /// archived, and PostgreSQL archives through this agent's socket, so the server must keep serving meanwhile.
    /// </summary>
    public Task StoppingAsync(CancellationToken cancellationToken) => StopAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return _drained ??= DrainAsync();
        }
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Host shutdown (SIGTERM): nothing new starts, queued operations are dropped, and the running one gets
    /// Agent:Operations:ShutdownGraceSeconds minus <see cref="TerminateReserve"/> to finish; then it is stopped cleanly
    /// (SIGTERM to pgBackRest, SIGKILL after the reserve), so the agent exits within the grace and leaves no process.
    /// </summary>
    private async Task DrainAsync()
    {
        OperationHandle? running;
        List<OperationHandle> dropped;
        lock (_gate)
        {
            _stopping = true;
            running = _exclusive;
            dropped = _queue.Select(q => q.Handle).ToList();
            _queue.Clear();
            dropped.ForEach(Retire);
        }

        foreach (var handle in dropped)
        {
            handle.Drop("The agent stopped before this queued operation could start.", "Start it again if it is still needed.");
        }

        if (running is null)
        {
            return;
        }

        var wait = _shutdownGrace - TerminateReserve;
        Log.WaitingForOperation(_logger, running.Id, running.Snapshot.Description, Math.Max(0, wait.TotalSeconds));
        if (wait > TimeSpan.Zero &&
            await Task.WhenAny(running.Completion, Task.Delay(wait, _time, CancellationToken.None)).ConfigureAwait(false) == running.Completion)
        {
            return;
        }

        Log.StoppingOperation(_logger, running.Id, _shutdownGrace.TotalSeconds);
        running.RequestCancel(
            $"The agent was stopped and the operation did not finish within its shutdown grace ({_shutdownGrace.TotalSeconds:0} s, " +
            "Agent:Operations:ShutdownGraceSeconds): pgBackRest was stopped (SIGTERM).");
        try
        {
            await running.Completion.WaitAsync(TerminateReserve + TimeSpan.FromSeconds(5), _time, CancellationToken.None)
                .ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Log.OperationDidNotStop(_logger, running.Id);
        }
    }

    /// <summary>Idempotent: the container disposes the registry once as itself and once as a hosted service.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        _shutdown.Cancel();
        _shutdown.Dispose();
    }

    private static AgentException UnknownOperation(string id) =>
        AgentException.NotFound($"Operation '{id}' is unknown to this agent.",
            $"The agent remembers its last {OperationHistory.DefaultCapacity} operations across restarts (backrestctl history); " +
            "list the backups to see what completed.");

    private static bool SameQueueEntry(OperationRequest a, OperationRequest b) =>
        a.Kind == b.Kind && a.BackupType == b.BackupType && a.Repo == b.Repo;

    private OperationHandle NewHandle(OperationRequest request, OperationState state)
    {
        var id = $"{request.Kind.ToString().ToLowerInvariant()}-{_time.GetUtcNow():yyyyMMdd-HHmmss}-{Guid.NewGuid().ToString("N")[..6]}";
        var handle = new OperationHandle(
            new OperationSnapshot(id, request.Kind, request.Description, state, _time.GetUtcNow(), null, -1,
                state == OperationState.Queued ? "queued" : "starting", [], null, null) { Trigger = request.Trigger },
            _time, _shutdown.Token, History.Record);
        _live[id] = handle;
        return handle;
    }

    private void Count(OperationRequest request, string decision)
    {
        if (request.BackupType is { } type)
        {
            Decisions.Count(type, request.Repo, decision);
        }
    }

    /// <summary>Keeps a finished handle a while for late watchers; the history has it for good.</summary>
    private void Retire(OperationHandle handle)
    {
        _finishedOrder.Enqueue(handle.Id);
        while (_finishedOrder.Count > FinishedToKeep)
        {
            _live.Remove(_finishedOrder.Dequeue());
        }
    }

    private async Task RunAsync(OperationHandle handle, OperationRequest request)
    {
        await Task.Yield(); // never run the work on the caller's thread
        OperationResult? result = null;
        Exception? failure = null;
        try
        {
            result = await request.Work(handle, handle.CancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = ex;
        }

        // Free the lane (or hand it to the next queued operation) before publishing the end.
        var covered = new List<(OperationHandle Handle, OperationRequest Request)>();
        (OperationHandle Handle, OperationRequest Request)? next = null;
        lock (_gate)
        {
            if (ReferenceEquals(_exclusive, handle))
            {
                _exclusive = null;
            }

            Retire(handle);
            if (failure is null && result is not null)
            {
                covered = _queue.Where(q => q.Request.IsCoveredBy?.Invoke(result) == true).ToList();
                _queue.RemoveAll(q => covered.Contains(q));
                covered.ForEach(q => Retire(q.Handle));
            }

            if (!_stopping && _queue.Count > 0)
            {
                next = _queue[0];
                _queue.RemoveAt(0);
                _exclusive = next.Value.Handle;
            }
        }

        if (failure is null)
        {
            handle.Complete(result);
            Log.OperationSucceeded(_logger, handle.Id);
        }
        else
        {
            handle.Fail(failure);
            Log.OperationFailed(_logger, handle.Id, failure.Message);
        }

        handle.SignalDone();

        foreach (var (dropped, droppedRequest) in covered)
        {
            dropped.Drop($"Dropped: {handle.Snapshot.Description} ({handle.Id}, backup {result?.BackupLabel}) finished first and covers it.",
                "Nothing to do: the newer backup includes these changes.");
            Count(droppedRequest, OperationDecisions.Dropped);
            Log.QueuedDropped(_logger, dropped.Id, dropped.Snapshot.Description, handle.Id);
        }

        if (next is { } n)
        {
            n.Handle.MarkRunning();
            Count(n.Request, OperationDecisions.Started);
            History.Record(n.Handle.Snapshot);
            Log.OperationStarted(_logger, n.Handle.Id, n.Request.Description, n.Request.Trigger);
            _ = RunAsync(n.Handle, n.Request);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.OperationStarted, EventName = nameof(LogEvents.OperationStarted), Level = LogLevel.Information, Message = "Operation {Id} started: {Description} ({Trigger})")]
        public static partial void OperationStarted(ILogger logger, string id, string description, OperationTrigger trigger);

        [LoggerMessage(EventId = LogEvents.OperationSucceeded, EventName = nameof(LogEvents.OperationSucceeded), Level = LogLevel.Information, Message = "Operation {Id} succeeded")]
        public static partial void OperationSucceeded(ILogger logger, string id);

        [LoggerMessage(EventId = LogEvents.OperationFailed, EventName = nameof(LogEvents.OperationFailed), Level = LogLevel.Warning, Message = "Operation {Id} failed: {Error}")]
        public static partial void OperationFailed(ILogger logger, string id, string error);

        [LoggerMessage(EventId = LogEvents.OperationQueued, EventName = nameof(LogEvents.OperationQueued), Level = LogLevel.Information, Message = "Operation {Id} queued behind {Running}: {Description}")]
        public static partial void OperationQueued(ILogger logger, string id, string description, string running);

        [LoggerMessage(EventId = LogEvents.QueuedOperationDropped, EventName = nameof(LogEvents.QueuedOperationDropped), Level = LogLevel.Information,
            Message = "Queued operation {Id} ({Description}) dropped: {Covering} finished first and covers it")]
        public static partial void QueuedDropped(ILogger logger, string id, string description, string covering);

        [LoggerMessage(EventId = LogEvents.OperationCancelRequested, EventName = nameof(LogEvents.OperationCancelRequested), Level = LogLevel.Information, Message = "Cancel requested for operation {Id}")]
        public static partial void CancelRequested(ILogger logger, string id);

        [LoggerMessage(EventId = LogEvents.WaitingForOperation, EventName = nameof(LogEvents.WaitingForOperation), Level = LogLevel.Warning,
            Message = "Agent stopping: waiting up to {Seconds:0} s for operation {Id} ({Description}) to finish")]
        public static partial void WaitingForOperation(ILogger logger, string id, string description, double seconds);

        [LoggerMessage(EventId = LogEvents.StoppingOperation, EventName = nameof(LogEvents.StoppingOperation), Level = LogLevel.Warning,
            Message = "Agent stopping: operation {Id} did not finish within the {Grace:0} s grace; stopping pgBackRest")]
        public static partial void StoppingOperation(ILogger logger, string id, double grace);

        [LoggerMessage(EventId = LogEvents.OperationDidNotStop, EventName = nameof(LogEvents.OperationDidNotStop), Level = LogLevel.Error,
            Message = "Operation {Id} did not end after pgBackRest was stopped; the agent exits anyway")]
        public static partial void OperationDidNotStop(ILogger logger, string id);

        [LoggerMessage(EventId = LogEvents.OperationInterruptedByRestart, EventName = nameof(LogEvents.OperationInterruptedByRestart), Level = LogLevel.Warning,
            Message = "Operation {Id} ({Description}) was still running when the previous agent stopped; marked failed in the history")]
        public static partial void InterruptedByRestart(ILogger logger, string id, string description);
    }
}
