using System.Diagnostics;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.IntegrationTests;

/// <summary>Small steps most integration tests share.</summary>
internal static class AgentTestExtensions
{
    public static readonly TimeSpan OperationTimeout = TimeSpan.FromMinutes(3);

    /// <summary>
    /// Follows an operation until it ends and returns its final state. Fails the test when it still runs after
    /// <paramref name="timeout"/> (with the tail of <paramref name="agent"/>'s log when given), or when the stream ends
    /// before the final state.
    /// </summary>
    public static async Task<Operation> WaitAsync(
        this BackupAgent.BackupAgentClient client, Operation started, TimeSpan? timeout = null, AgentProcess? agent = null)
    {
        var limit = timeout ?? OperationTimeout;
        using var cts = new CancellationTokenSource(limit);
        using var call = client.WatchOperation(new WatchOperationRequest { Id = started.Id }, cancellationToken: cts.Token);
        var last = started;
        try
        {
            await foreach (var update in call.ResponseStream.ReadAllAsync(cts.Token))
            {
                last = update;
            }
        }
        catch (Exception ex) when (cts.IsCancellationRequested && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
        {
            throw new TimeoutException(
                $"Operation {started.Id} ({started.Description}) still {last.State} ({last.Phase}) after {limit.TotalSeconds:0} s." +
                (agent is null ? "" : $"\n--- agent log (tail)\n{agent.LogTail()}"));
        }

        Assert.True(last.State != OperationState.Running, $"the watch of operation {started.Id} ended while it was still running");
        return last;
    }

    /// <summary><see cref="WaitAsync(BackupAgent.BackupAgentClient, Operation, TimeSpan?, AgentProcess?)"/> with the environment's agent.</summary>
    public static Task<Operation> WaitAsync(this TestEnvironment env, Operation started, TimeSpan? timeout = null) =>
        env.Client.WaitAsync(started, timeout, env.Agent);

    /// <summary>Polls <paramref name="condition"/> until it holds; errors while polling (a starting server) count as "not yet".</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> describe)
    {
        var clock = Stopwatch.StartNew();
        Exception? last = null;
        while (clock.Elapsed < timeout)
        {
            try
            {
                if (await condition())
                {
                    return;
                }

                last = null;
            }
            catch (Exception ex) when (ex is Npgsql.NpgsqlException or IOException)
            {
                last = ex;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200));
        }

        throw new TimeoutException($"Not within {timeout.TotalSeconds:0} s: {describe()}{(last is null ? "" : $" (last error: {last.Message})")}");
    }

    /// <summary>Starts a backup, waits for it, and insists it succeeded (showing the agent's error if not).</summary>
    public static async Task<Operation> BackupAsync(this TestEnvironment env, string type, int repo = 0)
    {
        var started = await env.Client.StartBackupAsync(new StartBackupRequest { Type = type, Repo = repo });
        var done = await env.WaitAsync(started);
        Assert.True(done.State == OperationState.Succeeded,
            $"{type} backup ended {done.State}: {done.Error}\n{env.Agent.LogTail(30)}");
        return done;
    }
}
