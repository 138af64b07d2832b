using System.Diagnostics;
using System.Text.Json.Nodes;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// backrestctl as it ships (the NativeAOT build tests/run.sh publishes) against a real agent: what an operator
/// and a script rely on — exit codes 0/1/2, JSON that parses, refusals that name what to do.
/// </summary>
public sealed class CliTests
{
    [Fact]
    public async Task Backrestctl_BackupListRestore_ExitCodesAndJsonAsScriptsReadThem()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Postgres.PgBenchInitAsync(1);

        var stanza = await env.CliAsync("stanza-create");
        Assert.True(stanza.Succeeded, stanza.ToString());

        // Non-terminal output: progress lines, then the summary.
        var backup = await env.CliAsync("backup", "--type", "full", "--wait");
        Assert.True(backup.Succeeded, backup.ToString());
        Assert.Contains("succeeded", backup.StandardOutput, StringComparison.OrdinalIgnoreCase);

        var list = await env.CliAsync("--json", "backups");
        Assert.True(list.Succeeded, list.ToString());
        var backups = JsonNode.Parse(list.StandardOutput)!["backups"]!.AsArray();
        var label = (string)Assert.Single(backups)!["label"]!;
        Assert.Matches(@"^\d{8}-\d{6}F$", label);

        var directory = env.Directory.Combine("cli-copy");
        var restore = await env.CliAsync("--json", "restore", "--data-directory", directory, "--set", label, "--wait");
        Assert.True(restore.Succeeded, restore.ToString());
        var operation = JsonNode.Parse(restore.StandardOutput)!;
        Assert.Equal("OPERATION_STATE_SUCCEEDED", (string)operation["state"]!);
        Assert.Equal(label, (string)operation["restore"]!["backupLabel"]!);
        Assert.True(File.Exists(Path.Combine(directory, "PG_VERSION")), "the restored directory holds no cluster");

        var status = await env.CliAsync("--json", "status");
        Assert.True(status.Succeeded, status.ToString());
        Assert.Equal(env.Stanza, (string)JsonNode.Parse(status.StandardOutput)!["stanza"]!);
    }

    [Fact]
    public async Task Backrestctl_RefusedOrUnreachable_ExitsNonZeroWithTheNextStep()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.CliAsync("stanza-create");

        // Refused by the agent (nothing to restore yet): exit 1, the agent's reason and hint on stderr.
        var refused = await env.CliAsync("restore", "--data-directory", env.Directory.Combine("nothing"), "--wait");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("no backup", refused.StandardError);
        Assert.Contains("Take a backup first", refused.StandardError);
        Assert.False(Directory.Exists(env.Directory.Combine("nothing")), "a refused restore created its directory");

        // A wrong command line never reaches the agent: exit 2.
        var usage = await env.CliAsync("restore", "--target-type", "time");
        Assert.Equal(2, usage.ExitCode);
        Assert.Contains("--target", usage.StandardError);

        // Nothing listening: exit 1 promptly, naming the address.
        var (program, leading) = HarnessPaths.Cli;
        var closedPort = FreePort.Next();
        var clock = Stopwatch.StartNew();
        var unreachable = await OsCommand.RunAsync(program, [.. leading, "--agent", $"127.0.0.1:{closedPort}", "status"]);
        Assert.Equal(1, unreachable.ExitCode);
        Assert.Contains($"127.0.0.1:{closedPort}", unreachable.StandardError);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed.TotalSeconds:0.0} s to report an unreachable agent");
    }

    [Fact]
    public async Task Backrestctl_RefusedBackup_NamesTheCommandToRunNotTheGrpcMethod()
    {
        await using var env = await TestEnvironment.CreateAsync();

        var noStanza = await env.CliAsync("backup", "--type", "full");
        Assert.Equal(1, noStanza.ExitCode);
        Assert.Contains("(backrestctl stanza-create)", noStanza.StandardError);
        Assert.DoesNotContain("CreateStanza", noStanza.StandardError);

        await env.CliAsync("stanza-create");
        await env.Postgres.PgBenchInitAsync(2);
        var running = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        var api = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() =>
            env.Client.StartBackupAsync(new StartBackupRequest { Type = "incr" }).ResponseAsync);
        var refused = await env.CliAsync("backup", "--type", "incr");
        await env.WaitAsync(running);

        // API clients get the method to call; a person gets the command to type.
        Assert.Contains($"WatchOperation {running.Id}", api.Status.Detail);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains($"(backrestctl operation {running.Id} --wait)", refused.StandardError);
        Assert.DoesNotContain("WatchOperation", refused.StandardError);
    }
}
