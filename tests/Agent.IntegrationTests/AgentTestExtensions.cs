using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.IntegrationTests;

/// <summary>Small steps most integration tests share.</summary>
internal static class AgentTestExtensions
{
    public static readonly TimeSpan OperationTimeout = TimeSpan.FromMinutes(3);

    /// <summary>Follows an operation until it ends and returns its final state.</summary>
    public static async Task<Operation> WaitAsync(this BackupAgent.BackupAgentClient client, Operation started, Action<Operation>? onUpdate = null)
    {
        using var cts = new CancellationTokenSource(OperationTimeout);
        using var call = client.WatchOperation(new WatchOperationRequest { Id = started.Id }, cancellationToken: cts.Token);
        Operation last = started;
        await foreach (var update in call.ResponseStream.ReadAllAsync(cts.Token))
        {
            onUpdate?.Invoke(update);
            last = update;
        }

        return last;
    }

    /// <summary>Starts a backup, waits for it, and insists it succeeded (showing the agent's error if not).</summary>
    public static async Task<Operation> BackupAsync(this TestEnvironment env, string type, int repo = 0)
    {
        var started = await env.Client.StartBackupAsync(new StartBackupRequest { Type = type, Repo = repo });
        var done = await env.Client.WaitAsync(started);
        Assert.True(done.State == OperationState.Succeeded,
            $"{type} backup ended {done.State}: {done.Error}\n{env.Agent.LogTail(30)}");
        return done;
    }
}
