using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;

namespace Backrest.Agent.IntegrationTests;

/// <summary>Start-up configuration: defaults chosen from the installed pgBackRest, and bad settings refused by key.</summary>
public sealed class ConfigurationTests
{
    [Fact]
    public async Task Start_BadSettings_ExitsWithEveryErrorNamingItsKey()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { StartAgent = false });
        var environment = new Dictionary<string, string?>(env.Agent.Environment)
        {
            ["Agent__PgBackRest__ProcessMax"] = "0",
            ["Agent__PgBackRest__CompressType"] = "xz",
            ["Agent__PgBackRest__BlockIncremental"] = "true",
            ["Agent__Repositories__0__Bundle"] = "false",
            ["Agent__Repositories__1__Type"] = "s3",
            ["Agent__Repositories__1__Path"] = "/demo",
        };

        var result = await OsCommand.RunAsync(
            "setpriv", HarnessPaths.AsPostgres(HarnessPaths.Agent),
            new CommandOptions { Environment = environment, WorkingDirectory = env.Directory.Path, Timeout = TimeSpan.FromSeconds(60) });

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Agent:PgBackRest:ProcessMax must be between 1 and 64", result.StandardError);
        Assert.Contains("Agent:PgBackRest:CompressType 'xz' is unknown", result.StandardError);
        Assert.Contains("Agent:Repositories:0:Bundle is false but Agent:PgBackRest:BlockIncremental needs bundling", result.StandardError);
        Assert.Contains("Agent:Repositories:1:S3 is required", result.StandardError);
        Assert.False(File.Exists(env.Agent.ConfigPath), "no pgbackrest.conf may be written from an invalid configuration");
    }

    [Fact]
    public async Task GetStatus_DefaultsAndOverrides_ShowValueAndSource()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?> { ["Agent__PgBackRest__ProcessMax"] = "1" },
        });

        var status = await env.Client.GetStatusAsync(new GetStatusRequest());
        var settings = status.Settings.ToDictionary(s => s.Key);

        // pgBackRest 2.45 here has zst and no stable block incremental.
        Assert.Equal(("zst", "default"), (settings["compress-type"].Value, settings["compress-type"].Source));
        Assert.Equal(("1", "default"), (settings["compress-level"].Value, settings["compress-level"].Source));
        Assert.Equal(("1", "configured"), (settings["process-max"].Value, settings["process-max"].Source));
        Assert.Equal(("n", "default"), (settings["repo-block"].Value, settings["repo-block"].Source));
        var conf = await File.ReadAllTextAsync(env.Agent.ConfigPath);
        Assert.Contains("compress-type=zst", conf);
        Assert.Contains("process-max=1", conf);
        Assert.DoesNotContain("archive-push-queue-max", conf);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(env.Agent.ConfigPath));
        Assert.Equal("primary", status.Postgres.Role);
        Assert.Equal("2.45", status.Pgbackrest.Version[..4]);
    }

    [Fact]
    public async Task GetStatus_BlockIncrementalForcedOn245_WarnsAndBackupStillWorks()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?> { ["Agent__PgBackRest__BlockIncremental"] = "true" },
        });

        var status = await env.Client.GetStatusAsync(new GetStatusRequest());
        Assert.Contains(status.Warnings, w => w.Contains("beta", StringComparison.Ordinal));
        Assert.Contains("beta=y", await File.ReadAllTextAsync(env.Agent.ConfigPath));

        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.BackupAsync("full");
    }

    [Fact]
    public async Task StartBackup_IncrAfterCompressTypeChange_WarnsThatTheFullsTypeIsKept()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?> { ["Agent__PgBackRest__CompressType"] = "gz" },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.BackupAsync("full");

        // Same agent, now with the default (zst): pgBackRest keeps gz for the incremental.
        await env.Agent.StopAsync();
        var restarted = new AgentProcess(AgentProcessOptions.For(env.Postgres, env.Stanza) with { Directory = env.Directory });
        await using (restarted)
        {
            await restarted.StartAsync();
            var started = await restarted.Client.StartBackupAsync(new StartBackupRequest { Type = "incr" });
            var done = await restarted.Client.WaitAsync(started);
            Assert.Equal(OperationState.Succeeded, done.State);
            Assert.Contains(done.Warnings, w => w.Contains("keeps its full backup's compression type", StringComparison.Ordinal));
        }
    }
}
