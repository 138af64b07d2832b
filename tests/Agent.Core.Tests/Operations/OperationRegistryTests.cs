using Backrest.Agent.Core.Operations;
using Microsoft.Extensions.Logging.Abstractions;

namespace Backrest.Agent.Core.Tests.Operations;

public class OperationRegistryTests
{
    private static OperationRegistry NewRegistry() => new(TimeProvider.System, NullLogger<OperationRegistry>.Instance);

    [Fact]
    public async Task StartExclusive_WhileOneRuns_IsAbortedNamingTheRunningOperation()
    {
        using var registry = NewRegistry();
        var release = new TaskCompletionSource();
        var first = registry.StartExclusive(OperationKind.Backup, "full backup to repo1", async (_, _) =>
        {
            await release.Task;
            return null;
        });

        var error = Assert.Throws<AgentException>(() =>
            registry.StartExclusive(OperationKind.Backup, "incr backup to repo1", (_, _) => Task.FromResult<object?>(null)));
        Assert.Equal(AgentErrorKind.Aborted, error.Kind);
        Assert.Contains(first.Id, error.Message);
        Assert.Contains("full backup to repo1", error.Message);

        release.SetResult();
        await foreach (var _ in registry.WatchAsync(first.Id, CancellationToken.None))
        {
        }

        // Once the first is finished the lane is free again.
        var second = registry.StartExclusive(OperationKind.Backup, "incr backup to repo1", (_, _) => Task.FromResult<object?>("ok"));
        Assert.Equal(OperationState.Running, second.State);
    }

    [Fact]
    public async Task WatchAsync_StreamsProgressAndEndsWithFinalState()
    {
        using var registry = NewRegistry();
        var step = new SemaphoreSlim(0);
        var started = registry.StartExclusive(OperationKind.Backup, "full backup to repo1", async (handle, _) =>
        {
            await step.WaitAsync();
            handle.ReportProgress(50, "copying files");
            handle.AddWarning("careful");
            await step.WaitAsync();
            return "result";
        });

        var seen = new List<OperationSnapshot>();
        var watch = Task.Run(async () =>
        {
            await foreach (var snapshot in registry.WatchAsync(started.Id, CancellationToken.None))
            {
                seen.Add(snapshot);
                step.Release();
            }
        });
        await watch.WaitAsync(TimeSpan.FromSeconds(10));

        var last = seen[^1];
        Assert.Equal(OperationState.Succeeded, last.State);
        Assert.Equal("result", last.Result);
        Assert.Equal(100, last.Percent);
        Assert.Equal(["careful"], last.Warnings);
        Assert.Contains(seen, s => s.Percent == 50 && s.Phase == "copying files");
    }

    [Fact]
    public async Task Failure_KeepsKindMessageAndHint()
    {
        using var registry = NewRegistry();
        var started = registry.StartExclusive(OperationKind.Restore, "restore", (_, _) =>
            throw new AgentException(AgentErrorKind.FailedPrecondition, "PostgreSQL is running", "Stop it first."));

        OperationSnapshot last = started;
        await foreach (var snapshot in registry.WatchAsync(started.Id, CancellationToken.None))
        {
            last = snapshot;
        }

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
}
