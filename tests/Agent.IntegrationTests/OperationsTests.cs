using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.IntegrationTests;

/// <summary>Operations the agent owns: shutdown waits or stops cleanly, the history survives a restart, cancel.</summary>
public sealed class OperationsTests
{
    // Slow settings so that a backup is surely still copying when the test acts on it.
    private static Dictionary<string, string?> SlowBackups(int shutdownGraceSeconds) => new()
    {
        ["Agent__PgBackRest__CompressType"] = "gz",
        ["Agent__PgBackRest__CompressLevel"] = "9",
        ["Agent__PgBackRest__ProcessMax"] = "1",
        ["Agent__Operations__ShutdownGraceSeconds"] = shutdownGraceSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static async Task WaitUntilCopyingAsync(TestEnvironment env, Operation started)
    {
        using var copying = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var call = env.Client.WatchOperation(new WatchOperationRequest { Id = started.Id }, cancellationToken: copying.Token);
        await foreach (var update in call.ResponseStream.ReadAllAsync(copying.Token))
        {
            Assert.Equal(OperationState.Running, update.State);
            if (update.Percent > 3)
            {
                return;
            }
        }
    }

    private static async Task<bool> BackupProcessRunsAsync(TestEnvironment env) =>
        (await OsCommand.RunAsync("pgrep", ["-f", "--", $"--config={env.Agent.ConfigPath} .*backup --type="])).Succeeded;

    [Fact]
    public async Task Agent_SigtermDuringBackupWithinGrace_BackupFinishesAndOperationAnswersAfterRestart()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = SlowBackups(120) });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.PgBenchInitAsync(3);
        var started = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        await WaitUntilCopyingAsync(env, started);

        var exitCode = await env.Agent.StopAsync(TimeSpan.FromSeconds(130));

        Assert.Equal(0, exitCode);
        Assert.Contains("waiting up to", env.Agent.LogTail(40));
        Assert.False(await BackupProcessRunsAsync(env), "a pgBackRest backup outlived the agent");
        await env.Agent.StartAsync();
        var cli = await env.CliAsync("operation", started.Id);
        Assert.True(cli.Succeeded, cli.ToString());
        Assert.Contains("succeeded", cli.StandardOutput);
        var after = await env.Client.GetOperationAsync(new GetOperationRequest { Id = started.Id });
        Assert.Equal(OperationState.Succeeded, after.State);
        var backups = await env.Client.ListBackupsAsync(new ListBackupsRequest());
        Assert.Equal(after.BackupLabel, Assert.Single(backups.Backups).Label);
        var history = await env.CliAsync("history");
        Assert.True(history.Succeeded, history.ToString());
        Assert.Contains(started.Id, history.StandardOutput);
    }

    [Fact]
    public async Task Agent_SigtermDuringBackupPastGrace_StoppedCleanlyAndNextBackupSucceeds()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = SlowBackups(0) });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.PgBenchInitAsync(8);
        var started = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        await WaitUntilCopyingAsync(env, started);

        var exitCode = await env.Agent.StopAsync(TimeSpan.FromSeconds(25));

        Assert.Equal(0, exitCode);
        Assert.False(await BackupProcessRunsAsync(env), "a pgBackRest backup outlived the agent");
        await env.Agent.StartAsync();
        var cli = await env.CliAsync("operation", started.Id);
        Assert.True(cli.Succeeded, cli.ToString());
        Assert.Contains("cancelled", cli.StandardOutput);
        Assert.Contains("ShutdownGraceSeconds", cli.StandardOutput);
        var next = await env.BackupAsync("full");
        Assert.Equal("full", next.Backup.Type);
    }

    [Fact]
    public async Task CancelOperation_RunningBackup_StoppedWithoutOrphanAndQueuedOneRunsAfter()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = SlowBackups(25) });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.PgBenchInitAsync(8);
        var full = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        var queued = await env.CliAsync("--json", "backup", "--type", "full", "--queue");
        Assert.True(queued.Succeeded, queued.ToString());
        Assert.Contains("OPERATION_STATE_QUEUED", queued.StandardOutput);
        var refused = await Assert.ThrowsAsync<RpcException>(() => env.Client.StartBackupAsync(new StartBackupRequest { Type = "incr" }).ResponseAsync);
        Assert.Equal(StatusCode.Aborted, refused.StatusCode);
        await WaitUntilCopyingAsync(env, full);

        var cancel = await env.CliAsync("cancel", full.Id);

        Assert.True(cancel.Succeeded, cancel.ToString());
        var stopped = await env.WaitAsync(full);
        Assert.Equal(OperationState.Cancelled, stopped.State);
        var history = await env.Client.ListOperationsAsync(new ListOperationsRequest());
        var next = history.Operations.First(o => o.Id != full.Id);
        Assert.Equal(OperationState.Succeeded, (await env.WaitAsync(next, TimeSpan.FromMinutes(4))).State);
        Assert.False(await BackupProcessRunsAsync(env));
    }
}
