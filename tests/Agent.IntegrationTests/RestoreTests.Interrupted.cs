using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests.RestoreTests;

/// <summary>A restore cut short by a crash of the agent (SIGKILL, as an OOM kill), then asked for again.</summary>
public sealed class InterruptedTests(ITestOutputHelper output)
{
    [Fact]
    public async Task StartRestore_AgentKilledMidRestore_SameRequestAgainCompletesTheCopy()
    {
        // One process and gz so the restore is surely still copying when the agent dies.
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?>
            {
                ["Agent__PgBackRest__CompressType"] = "gz",
                ["Agent__PgBackRest__CompressLevel"] = "1",
                ["Agent__PgBackRest__ProcessMax"] = "1",
            },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.PgBenchInitAsync(8);
        await RestoreSteps.TakeFullBackupAsync(env);
        var expected = await env.Postgres.ScalarAsync<long>("select sum(abalance) + count(*) from pgbench_accounts");

        var directory = env.Directory.Combine("interrupted");
        var request = new StartRestoreRequest { TargetType = "immediate", TargetAction = "promote", DataDirectory = directory };
        var started = await env.Client.StartRestoreAsync(request);
        using (var copying = new CancellationTokenSource(TimeSpan.FromMinutes(2)))
        {
            using var call = env.Client.WatchOperation(new WatchOperationRequest { Id = started.Id }, cancellationToken: copying.Token);
            await foreach (var update in call.ResponseStream.ReadAllAsync(copying.Token))
            {
                if (update.Percent > 5 || update.State != OperationState.Running)
                {
                    break;
                }
            }
        }

        env.Agent.Kill();
        var leftBehind = Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).ToHashSet();
        output.WriteLine($"after the kill {directory} holds {leftBehind.Count} entries; PG_VERSION: {leftBehind.Contains("PG_VERSION")}, " +
            $"backup.manifest: {leftBehind.Contains("backup.manifest")}");
        await env.Agent.StartAsync();

        // The half-restored directory is recognised (pgBackRest's backup.manifest) and finished with a delta restore.
        var done = await RestoreSteps.RestoreAsync(env, request);
        Assert.StartsWith("delta restore", done.Description);
        await using var copy = await RestoreSteps.StartCopyAsync(env, directory, FreePort.Next());
        await copy.Cluster.WaitForRecoveryEndAsync(RestoreSteps.RecoveryTimeout);
        Assert.Equal(expected, await copy.Cluster.ScalarAsync<long>("select sum(abalance) + count(*) from pgbench_accounts"));
    }
}
