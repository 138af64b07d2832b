using System.Net;
using System.Net.Sockets;
using Backrest.Agent.IntegrationTests.Harness;

namespace Backrest.Agent.IntegrationTests;

/// <summary>A bad setting or a port in use stops the agent with exit 2 and one message naming the key; never a stack
/// trace, never a crash loop after part of the agent already listened.</summary>
public sealed class StartupRefusalTests
{
    [Fact]
    public async Task Start_ValueOfTheWrongType_ExitsTwoNamingTheKeyWithoutStackTrace()
    {
        var result = await StartAgentAsync(new()
        {
            ["Agent__Listen__Port"] = "abc",
            ["Agent__PgBackRest__ArchiveAsync"] = "maybe",
            ["Agent__Repositories__0__RetentionFul"] = "2",
        });

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Agent:Listen:Port 'abc' is not a whole number", result.StandardError);
        Assert.Contains("Agent:PgBackRest:ArchiveAsync 'maybe' is not true or false", result.StandardError);
        // A key that names no option is reported (a typo would otherwise be ignored in silence), with the right names.
        Assert.Contains("Agent:Repositories:0:RetentionFul is not a setting", result.StandardError);
        Assert.Contains("RetentionFull", result.StandardError);
        AssertNoStackTrace(result);
    }

    [Fact]
    public async Task Start_PosixRepositoryNotSharedInMultiInstanceCluster_ExitsTwoNamingTheKey()
    {
        var result = await StartAgentAsync(new() { ["Agent__Cluster__Instances"] = "3" });

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Agent:Repositories:0:Shared must be true for a posix repository when Agent:Cluster:Instances is 3", result.StandardError);
        AssertNoStackTrace(result);
    }

    [Theory]
    [InlineData("Agent__Listen__Port", "Agent:Listen:Port")]
    [InlineData("Agent__Listen__MetricsPort", "Agent:Listen:MetricsPort")]
    public async Task Start_PortInUse_ExitsTwoNamingTheKey(string variable, string key)
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port;

        var result = await StartAgentAsync(new() { [variable] = port.ToString() });

        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"{key}: cannot listen on {port}", result.StandardError);
        AssertNoStackTrace(result);
    }

    [Fact]
    public async Task ConfigShow_PrintsEffectiveSettingsWithSecretsRedacted()
    {
        const string secret = "s3-secret-that-must-not-show";
        var result = await StartAgentAsync(new()
        {
            ["Agent__Repositories__1__Type"] = "s3",
            ["Agent__Repositories__1__Path"] = "/repo",
            ["Agent__Repositories__1__S3__Bucket"] = "bucket",
            ["Agent__Repositories__1__S3__Endpoint"] = "127.0.0.1",
            ["Agent__Repositories__1__S3__Region"] = "us-east-1",
            ["Agent__Repositories__1__S3__Key"] = "AKIAEXAMPLE",
            ["Agent__Repositories__1__S3__KeySecret"] = secret,
        }, "config", "show");

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("\"Bucket\": \"bucket\"", result.StandardOutput);
        Assert.Contains("\"KeySecret\": \"(redacted)\"", result.StandardOutput);
        Assert.DoesNotContain(secret, result.StandardOutput + result.StandardError);
    }

    private static async Task<CommandResult> StartAgentAsync(Dictionary<string, string?> settings, params string[] args)
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { StartAgent = false });
        var environment = new Dictionary<string, string?>(env.Agent.Environment);
        foreach (var (key, value) in settings)
        {
            environment[key] = value;
        }

        return await OsCommand.RunAsync(
            "setpriv", [.. HarnessPaths.AsPostgres(HarnessPaths.Agent), .. args],
            new CommandOptions { Environment = environment, WorkingDirectory = env.Directory.Path, Timeout = TimeSpan.FromSeconds(60) });
    }

    private static void AssertNoStackTrace(CommandResult result)
    {
        var output = result.StandardOutput + result.StandardError;
        Assert.DoesNotContain("   at ", output);
        Assert.DoesNotContain("Unhandled exception", output);
    }
}
