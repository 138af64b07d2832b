using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.IntegrationTests;

/// <summary>Retention rendered into pgbackrest.conf, Expire (and its dry run) and DeleteBackup against a real pgBackRest.</summary>
public sealed class RetentionTests
{
    [Fact]
    public async Task RetentionFull2_ThreeFullBackups_KeepsTheNewestTwo()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?> { ["Agent__Repositories__0__RetentionFull"] = "2" },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());

        var labels = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            labels.Add((await env.BackupAsync("full")).BackupLabel);
        }

        var backups = await env.Client.ListBackupsAsync(new ListBackupsRequest());
        Assert.Equal(labels[1..], backups.Backups.Select(b => b.Label));
        var status = await env.Client.GetStatusAsync(new GetStatusRequest());
        Assert.True(Assert.Single(status.Retention).Configured);
        Assert.DoesNotContain(status.Warnings, w => w.Contains("retention", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Expire_DryRunAfterRetentionLowered_ListsTheOldFullAndRemovesNothingThenExpireRemovesIt()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        var status = await env.Client.GetStatusAsync(new GetStatusRequest());
        Assert.False(Assert.Single(status.Retention).Configured);
        Assert.Single(status.Warnings, w => w.Contains("repo1 has no retention", StringComparison.Ordinal));
        var first = await env.BackupAsync("full");
        var incr = await env.BackupAsync("incr");
        // Said once at start-up and in status, not on every backup.
        Assert.DoesNotContain(incr.Warnings, w => w.Contains("retention", StringComparison.Ordinal));
        await env.BackupAsync("full");
        await env.Agent.StopAsync();

        // The same cluster, now with a retention of one full backup.
        await using var agent = new AgentProcess(AgentProcessOptions.For(env.Postgres, env.Stanza) with
        {
            Settings = new Dictionary<string, string?> { ["Agent__Repositories__0__RetentionFull"] = "1" },
        });
        await agent.StartAsync();
        var before = await agent.Client.ListBackupsAsync(new ListBackupsRequest());

        var dryRun = await agent.Client.ExpireAsync(new ExpireRequest { DryRun = true });

        Assert.True(dryRun.DryRun);
        Assert.Equal([first.BackupLabel, incr.BackupLabel], Assert.Single(dryRun.Backups).Labels);
        Assert.Equal(before.Backups.Select(b => b.Label), (await agent.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Select(b => b.Label));

        var (program, leading) = HarnessPaths.Cli;
        var cli = await OsCommand.RunAsync(program, [.. leading, "--agent", agent.Address, "expire"]);
        Assert.True(cli.Succeeded, cli.ToString());
        Assert.Contains($"removed backup {first.BackupLabel}, {incr.BackupLabel}", cli.StandardOutput);
        Assert.Single((await agent.Client.ListBackupsAsync(new ListBackupsRequest())).Backups);
    }

    [Fact]
    public async Task DeleteBackup_DiffWithIncr_RemovesBothOnlyFullRefusedUnknownNotFound()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        var full1 = (await env.BackupAsync("full")).BackupLabel;
        var diff = (await env.BackupAsync("diff")).BackupLabel;
        var incr = (await env.BackupAsync("incr")).BackupLabel;
        var full2 = (await env.BackupAsync("full")).BackupLabel;

        var unknown = await Assert.ThrowsAsync<RpcException>(() =>
            env.Client.DeleteBackupAsync(new DeleteBackupRequest { Label = "20200101-000000F" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        var malformed = await Assert.ThrowsAsync<RpcException>(() =>
            env.Client.DeleteBackupAsync(new DeleteBackupRequest { Label = "--set=x" }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, malformed.StatusCode);
        var notOldest = await Assert.ThrowsAsync<RpcException>(() =>
            env.Client.DeleteBackupAsync(new DeleteBackupRequest { Label = diff }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, notOldest.StatusCode);
        Assert.Contains("not the oldest", notOldest.Status.Detail);
        var preview = await env.Client.DeleteBackupAsync(new DeleteBackupRequest { Label = diff, Force = true, DryRun = true });
        Assert.Equal([diff, incr], preview.Removed);
        Assert.Equal(4, (await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Count);

        var deleted = await env.CliAsync("delete", diff, "--force");

        Assert.True(deleted.Succeeded, deleted.ToString());
        Assert.Contains($"deleted from repo1: {diff}, {incr}", deleted.StandardOutput);
        Assert.Contains($"end of {full1}", deleted.StandardOutput);
        Assert.Equal([full1, full2], (await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Select(b => b.Label));

        await env.Client.DeleteBackupAsync(new DeleteBackupRequest { Label = full1 }); // the oldest, and another full remains
        var onlyFull = await env.CliAsync("delete", full2);
        Assert.Equal(1, onlyFull.ExitCode);
        Assert.Contains("only full backup", onlyFull.StandardError);
        Assert.Equal([full2], (await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Select(b => b.Label));
        var history = await env.Client.ListOperationsAsync(new ListOperationsRequest());
        Assert.Contains(history.Operations, o => o.Kind == OperationKind.Delete && o.BackupLabel == diff && o.State == OperationState.Succeeded);
    }
}
