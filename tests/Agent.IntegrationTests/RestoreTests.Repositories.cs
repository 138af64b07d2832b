using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.IntegrationTests.RestoreTests;

/// <summary>
/// Restore with repo 0 leaves the choice to pgBackRest: the first repository, in order, holding a backup that satisfies
/// the target. Two posix repositories: a backup only in repo2, then repo1 made unreadable.
/// </summary>
public sealed class RestoreRepositoryChoiceTests
{
    [Fact]
    public async Task StartRestore_RepoZero_PgBackRestChoosesARepositoryHoldingABackupAndTheResultNamesIt()
    {
        using var second = TestDirectory.Create();
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?>
            {
                ["Agent__Repositories__1__Type"] = "posix",
                ["Agent__Repositories__1__Path"] = second.CreateSubdirectory("repo2"),
            },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.ExecuteAsync("create table marker (id serial primary key, note text)");
        await RestoreSteps.InsertMarkerAsync(env.Postgres, "before-backup");

        var inRepo2 = await env.BackupAsync("full", repo: 2);
        await RestoreSteps.InsertMarkerAsync(env.Postgres, "after-backup");
        await RestoreSteps.SwitchAndWaitArchivedAsync(env.Postgres);

        // repo1 holds no backup: a time before repo2's backup is refused, naming repo2's window.
        var early = await Assert.ThrowsAsync<RpcException>(() => env.Client.StartRestoreAsync(new StartRestoreRequest
        {
            TargetType = "time",
            Target = inRepo2.Backup.Backup.Started.ToDateTimeOffset().AddMinutes(-5).ToString("yyyy-MM-dd HH:mm:ss+00"),
            DataDirectory = env.Directory.Combine("too-early"),
        }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, early.StatusCode);
        Assert.Contains("repo2 can restore from", early.Status.Detail);

        var directory = env.Directory.Combine("from-repo2");
        var port = FreePort.Next();
        var done = await RestoreSteps.RestoreAsync(env, new StartRestoreRequest { DataDirectory = directory, Port = port });
        Assert.Equal((2, inRepo2.Backup.Backup.Label), (done.Restore.Repo, done.Restore.BackupLabel));
        await using (var copy = await RestoreSteps.StartCopyAsync(env, directory, port))
        {
            await copy.Cluster.WaitForRecoveryEndAsync(RestoreSteps.RecoveryTimeout);
            Assert.Equal(["before-backup", "after-backup"], await RestoreSteps.MarkersAsync(copy.Cluster));
        }

        // Now repo1 has the newer backup but cannot be read (a dead repository): pgBackRest skips it.
        await env.BackupAsync("full", repo: 1);
        File.SetUnixFileMode(env.Agent.RepositoryPath, UnixFileMode.None);
        try
        {
            var skipped = await RestoreSteps.RestoreAsync(env, new StartRestoreRequest { DataDirectory = env.Directory.Combine("repo1-dead") });
            Assert.Equal((2, inRepo2.Backup.Backup.Label), (skipped.Restore.Repo, skipped.Restore.BackupLabel));
            Assert.Contains("from the repository pgBackRest chooses", skipped.Description);
        }
        finally
        {
            File.SetUnixFileMode(env.Agent.RepositoryPath, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }
}
