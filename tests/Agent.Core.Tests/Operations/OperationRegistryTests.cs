using Backrest.Agent.Core.Backups;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Backrest.Agent.Core.Tests.Operations;

public sealed class OperationRegistryTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly string _directory = Directory.CreateTempSubdirectory("registry-tests-").FullName;
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 4, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => TempDirectories.Delete(_directory);

    private OperationRegistry NewRegistry(int shutdownGraceSeconds = 25) => new(
        new AgentOptions
        {
            PgBackRest = new PgBackRestOptions { SpoolPath = _directory },
            Operations = new OperationsOptions { ShutdownGraceSeconds = shutdownGraceSeconds },
        },
        new OperationDecisions(), _time, NullLogger<OperationRegistry>.Instance);

    private static OperationRequest Request(string description, Func<OperationHandle, CancellationToken, Task<OperationResult?>> work) =>
        new(OperationKind.Backup, description, work);

    private static OperationRequest Backup(string type, Func<CancellationToken, Task> work, int repo = 1) =>
        new(OperationKind.Backup, $"{type} backup to repo{repo}", async (_, ct) =>
        {
            await work(ct);
            return new BackupOutcome(type, type, repo, null);
        })
        {
            Trigger = OperationTrigger.Schedule,
            BackupType = type,
            Repo = repo,
            IsCoveredBy = r => r is BackupOutcome done && done.Covers(type, repo),
        };

    private static async Task<OperationSnapshot> FinalAsync(OperationRegistry registry, string id)
    {
        OperationSnapshot? last = null;
        await foreach (var snapshot in registry.WatchAsync(id, CancellationToken.None).WithCancellation(CancellationToken.None))
        {
            last = snapshot;
        }

        return last!;
    }

    [Fact]
    public async Task Start_WorkThatEndsAtOnce_ReturnsTheRunningStateEveryTime()
    {
        // The work runs on another thread as soon as it is started: the snapshot handed back must still be the one the
        // operation started with. Before the fix the registry read the snapshot after launching the work, and a work
        // that ended at once was sometimes returned as already succeeded.
        using var registry = NewRegistry();
        for (var i = 0; i < 300; i++)
        {
            var started = registry.Start(Request($"backup {i}", (_, _) => Task.FromResult<OperationResult?>(null)));
            Assert.Equal(OperationState.Running, started.State);
            Assert.Null(started.Finished);
            Assert.Equal(OperationState.Succeeded, (await FinalAsync(registry, started.Id).WaitAsync(Patience)).State);
        }
    }

    [Fact]
    public async Task Start_WhileOneRuns_IsAbortedNamingTheRunningOperation()
    {
        using var registry = NewRegistry();
        var release = new TaskCompletionSource();
        var first = registry.Start(Request("full backup to repo1", async (_, _) =>
        {
            await release.Task;
            return null;
        }));

        var error = Assert.Throws<AgentException>(() =>
            registry.Start(Request("incr backup to repo1", (_, _) => Task.FromResult<OperationResult?>(null))));
        Assert.Equal(AgentErrorKind.Aborted, error.Kind);
        Assert.Contains(first.Id, error.Message);
        Assert.Contains("full backup to repo1", error.Message);

        release.SetResult();
        Assert.Equal(OperationState.Succeeded, (await FinalAsync(registry, first.Id).WaitAsync(Patience)).State);

        // The lane was freed before the final state was published: the next one starts.
        var second = registry.Start(Request("incr backup to repo1", (_, _) => Task.FromResult<OperationResult?>(null)));
        Assert.Equal(OperationState.Running, second.State);
    }

    [Fact]
    public async Task WatchAsync_StreamsProgressAndEndsWithFinalState()
    {
        using var registry = NewRegistry();
        var progressed = new TaskCompletionSource();
        var finish = new TaskCompletionSource();
        var started = registry.Start(Request("full backup to repo1", async (handle, _) =>
        {
            handle.ReportProgress(50, "copying files");
            handle.AddWarning("careful");
            progressed.SetResult();
            await finish.Task;
            return new BackupOutcome("full", "full", 1, null);
        }));

        await progressed.Task.WaitAsync(Patience);
        var midway = registry.Get(started.Id);
        Assert.Equal((OperationState.Running, 50.0, "copying files"), (midway.State, midway.Percent, midway.Phase));
        var watch = FinalAsync(registry, started.Id);
        finish.SetResult();

        var last = await watch.WaitAsync(Patience);
        Assert.Equal(OperationState.Succeeded, last.State);
        Assert.IsType<BackupOutcome>(last.Result);
        Assert.Equal(100, last.Percent);
        Assert.Equal(["careful"], last.Warnings);
    }

    [Fact]
    public async Task Failure_KeepsKindMessageAndHint()
    {
        using var registry = NewRegistry();
        var started = registry.Start(Request("restore", (_, _) =>
            throw new AgentException(AgentErrorKind.FailedPrecondition, "PostgreSQL is running", "Stop it first.")));

        var last = await FinalAsync(registry, started.Id).WaitAsync(Patience);

        Assert.Equal(OperationState.Failed, last.State);
        Assert.Equal(new OperationError(AgentErrorKind.FailedPrecondition, "PostgreSQL is running", "Stop it first.", 0), last.Error);
        Assert.Null(registry.Running);
    }

    [Fact]
    public void Get_UnknownId_IsNotFound()
    {
        using var registry = NewRegistry();
        Assert.Equal(AgentErrorKind.NotFound, Assert.Throws<AgentException>(() => registry.Get("nope")).Kind);
    }

    [Fact]
    public async Task Start_QueueWhileBusy_OneEntryPerTypeAndRepoRunsAfter()
    {
        using var registry = NewRegistry();
        var release = new TaskCompletionSource();
        var ran = new List<string>();
        var full = registry.Start(Backup("full", _ => release.Task));

        var incr = registry.Start(Backup("incr", _ => { ran.Add("incr repo1"); return Task.CompletedTask; }), queueIfBusy: true);
        var again = registry.Start(Backup("incr", _ => { ran.Add("second incr repo1"); return Task.CompletedTask; }), queueIfBusy: true);
        var otherRepo = registry.Start(Backup("incr", _ => { ran.Add("incr repo2"); return Task.CompletedTask; }, repo: 2), queueIfBusy: true);

        Assert.Equal(OperationState.Queued, incr.State);
        Assert.Equal(incr.Id, again.Id); // at most one entry per type and repository
        Assert.Equal([incr.Id, otherRepo.Id], registry.Queued.Select(q => q.Id));

        release.SetResult();
        // The full covers the queued incr of repo1 (dropped); the incr of repo2 runs.
        var dropped = await FinalAsync(registry, incr.Id).WaitAsync(Patience);
        var last = await FinalAsync(registry, otherRepo.Id).WaitAsync(Patience);

        Assert.Equal(OperationState.Cancelled, dropped.State);
        Assert.Contains(full.Id, dropped.Error!.Message);
        Assert.Equal(OperationState.Succeeded, last.State);
        Assert.Equal(["incr repo2"], ran);
        var decisions = registry.Decisions.Snapshot();
        Assert.Equal(1, decisions[("incr", 1, OperationDecisions.Dropped)]);
        Assert.Equal(1, decisions[("incr", 1, OperationDecisions.AlreadyQueued)]);
        Assert.Equal(1, decisions[("incr", 2, OperationDecisions.Started)]);
        // Each decision is in the history, which survives a restart.
        using var restarted = NewRegistry();
        Assert.Equal(OperationState.Cancelled, restarted.Get(incr.Id).State);
        Assert.Equal(OperationTrigger.Schedule, restarted.Get(otherRepo.Id).Trigger);
    }

    [Fact]
    public async Task Start_QueuedDiffAfterFailedFull_StillRuns()
    {
        using var registry = NewRegistry();
        var release = new TaskCompletionSource();
        var full = registry.Start(Backup("full", async _ =>
        {
            await release.Task;
            throw new AgentException(AgentErrorKind.Unavailable, "repository unreachable");
        }));
        var diff = registry.Start(Backup("diff", _ => Task.CompletedTask), queueIfBusy: true);

        release.SetResult();

        Assert.Equal(OperationState.Failed, (await FinalAsync(registry, full.Id).WaitAsync(Patience)).State);
        Assert.Equal(OperationState.Succeeded, (await FinalAsync(registry, diff.Id).WaitAsync(Patience)).State);
    }

    [Fact]
    public async Task Cancel_RunningOperation_TokenCancelledAndStateCancelledWithReason()
    {
        using var registry = NewRegistry();
        var started = registry.Start(Request("full backup to repo1", async (_, ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return null;
        }));

        registry.Cancel(started.Id);
        var last = await FinalAsync(registry, started.Id).WaitAsync(Patience);

        Assert.Equal(OperationState.Cancelled, last.State);
        Assert.Contains("Cancelled by request", last.Error!.Message);
        Assert.Equal(AgentErrorKind.FailedPrecondition, Assert.Throws<AgentException>(() => registry.Cancel(started.Id)).Kind);
        Assert.Equal(AgentErrorKind.NotFound, Assert.Throws<AgentException>(() => registry.Cancel("backup-unknown")).Kind);
    }

    [Fact]
    public async Task StopAsync_OperationEndsWithinGrace_WaitsForItWithoutCancelling()
    {
        using var registry = NewRegistry(shutdownGraceSeconds: 25);
        var finish = new TaskCompletionSource();
        var cancelled = false;
        var started = registry.Start(Request("full backup to repo1", async (_, ct) =>
        {
            await finish.Task;
            cancelled = ct.IsCancellationRequested;
            return new BackupOutcome("full", "full", 1, null);
        }));

        var stop = registry.StopAsync(CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(14)); // inside the 15 s the operation gets before pgBackRest is stopped
        await Task.Yield();
        Assert.False(stop.IsCompleted, "StopAsync returned while the operation still ran");
        Assert.Equal(AgentErrorKind.Unavailable, Assert.Throws<AgentException>(() =>
            registry.Start(Request("incr backup to repo1", (_, _) => Task.FromResult<OperationResult?>(null)))).Kind);

        finish.SetResult();
        await stop.WaitAsync(Patience);

        Assert.False(cancelled);
        Assert.Equal(OperationState.Succeeded, registry.Get(started.Id).State);
    }

    [Fact]
    public async Task StopAsync_OperationOutlastsGrace_StoppedAndRecordedAsCancelled()
    {
        using var registry = NewRegistry(shutdownGraceSeconds: 25);
        var started = registry.Start(Request("full backup to repo1", async (_, ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct); // stands for pgBackRest, which the token stops
            return null;
        }));
        var queued = registry.Start(Request("incr backup to repo1", (_, _) => Task.FromResult<OperationResult?>(null)) with
        {
            BackupType = "incr", Repo = 1,
        }, queueIfBusy: true);

        var stop = registry.StopAsync(CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(15));
        await stop.WaitAsync(Patience);

        var last = registry.Get(started.Id);
        Assert.Equal(OperationState.Cancelled, last.State);
        Assert.Contains("ShutdownGraceSeconds", last.Error!.Message);
        Assert.Equal(OperationState.Cancelled, registry.Get(queued.Id).State);
    }

    [Fact]
    public void History_RunningWhenTheAgentDied_MarkedFailedAfterRestart()
    {
        string id;
        using (var registry = NewRegistry())
        {
            // Work that never ends and ignores its token: nothing but the kill ends it.
            id = registry.Start(Request("full backup to repo1", async (_, _) =>
            {
                await new TaskCompletionSource().Task;
                return null;
            })).Id;
        }

        // A new registry on the same spool is the agent after a kill -9: the history still says running.
        using var restarted = NewRegistry();
        var record = restarted.Get(id);
        Assert.Equal(OperationState.Failed, record.State);
        Assert.Equal(AgentErrorKind.Aborted, record.Error!.Kind);
        Assert.Contains(restarted.List(10), s => s.Id == id);
    }

    [Fact]
    public void History_KeepsTheNewestEntriesOnly()
    {
        var history = new OperationHistory(Path.Combine(_directory, "history.json"), capacity: 3);
        for (var i = 0; i < 5; i++)
        {
            history.Record(new OperationSnapshot($"op-{i}", OperationKind.Backup, "b", OperationState.Succeeded,
                _time.GetUtcNow(), _time.GetUtcNow(), 100, "done", [], null, null));
        }

        var reloaded = new OperationHistory(Path.Combine(_directory, "history.json"), capacity: 3);
        Assert.Equal(["op-4", "op-3", "op-2"], reloaded.List(10).Select(r => r.Id));
    }
}
