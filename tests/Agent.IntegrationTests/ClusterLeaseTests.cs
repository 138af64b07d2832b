using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.IntegrationTests.Harness.Emulators;
using Backrest.Agent.V1;
using Grpc.Core;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests;

/// <summary>The backup lease in an object store that enforces create-if-absent (Azure: If-None-Match: *, Azurite).</summary>
[Collection(StorageEmulatorsCollection.Name)]
public sealed class ClusterLeaseTests(StorageEmulators emulators, ITestOutputHelper output)
{
    [Fact]
    public Task SplitBrain_AzureRepository_BothPrimariesBackUpAtOnce_ExactlyOneRuns() => output.OnFailureAsync(emulators.LogTails, async () =>
    {
        var repository = new Dictionary<string, string?>(emulators.Azure.RepositorySettings(0, emulators.UniquePath("lease")))
        {
            ["Agent__Repositories__0__Shared"] = null,
        };
        await using var cluster = await ReplicationCluster.CreateAsync(replicas: 1, rows: 10_000, perMember: _ => repository);
        var promoted = cluster.Replicas[0];
        await promoted.Postgres.ExecuteAsync("select pg_promote()");
        await promoted.Postgres.WaitForRecoveryEndAsync(TimeSpan.FromSeconds(30));
        // No CHECKPOINT here: the promoted one's agent runs it before backing up (pg_control is still on timeline 1).

        var agents = new[] { cluster.Primary.Agent, promoted.Agent };
        var attempts = await Task.WhenAll(agents.Select(async agent =>
        {
            try
            {
                return (agent, operation: await agent.Client.StartBackupAsync(new StartBackupRequest { Type = "full" }), error: (RpcException?)null);
            }
            catch (RpcException ex)
            {
                return (agent, operation: (Operation?)null, error: ex);
            }
        }));

        var winner = Assert.Single(attempts, a => a.operation is not null);
        var loser = Assert.Single(attempts, a => a.error is not null);
        output.WriteLine($"winner {winner.agent.Address}; refused: {loser.error!.Status.Detail}");
        Assert.Equal(StatusCode.FailedPrecondition, loser.error.StatusCode);
        Assert.Contains($"{(winner.agent == agents[0] ? "pg-0" : "pg-1")} runs full backup to repo1", loser.error.Status.Detail);
        var done = await winner.agent.Client.WaitAsync(winner.operation!, agent: winner.agent);
        Assert.True(done.State == OperationState.Succeeded, done.ToString());

        // Released: the other one may back up now (it is not refused; it is stopped right away, its result is not the point).
        var next = await loser.agent.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        Assert.Equal(OperationState.Running, next.State);
        await loser.agent.Client.CancelOperationAsync(new CancelOperationRequest { Id = next.Id });
        await loser.agent.Client.WaitAsync(next, agent: loser.agent);
    });
}
