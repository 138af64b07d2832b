using Backrest.Agent.IntegrationTests.Harness;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests.RestoreTests;

public sealed class OneShotFixture : RestoreFixture;

/// <summary>
/// <c>backrest-agent restore ...</c> (init containers, Jobs): run as postgres with the environment the agent process gets,
/// beside the running agent of the same environment.
/// </summary>
public sealed class OneShotTests(OneShotFixture fixture, ITestOutputHelper output) : IClassFixture<OneShotFixture>
{
    [Fact]
    public async Task OneShotRestore_Immediate_ExitsZeroAndDirectoryHoldsCluster()
    {
        var directory = fixture.NewDataDirectory("oneshot");
        var result = await RunAsync("--data-directory", directory, "--target-type", "immediate");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(File.Exists(Path.Combine(directory, "PG_VERSION")), result.ToString());
        Assert.Equal("15", (await File.ReadAllTextAsync(Path.Combine(directory, "PG_VERSION"))).Trim());
        Assert.True(File.Exists(Path.Combine(directory, "recovery.signal")), "an immediate restore must leave recovery.signal");
        Assert.Contains($"restored backup {fixture.BackupLabel} from repo1 into {directory}", result.StandardOutput);
        Assert.Contains("next: ", result.StandardOutput);
        output.WriteLine(result.ToString());
        Directory.Delete(directory, recursive: true);
    }

    [Fact]
    public async Task OneShotRestore_UnparsableTime_ExitsOneWithClearMessage()
    {
        var directory = fixture.NewDataDirectory("oneshot-refused");
        var result = await RunAsync("--data-directory", directory, "--target-type", "time", "--target", "garbage");

        Assert.True(result.ExitCode == 1, result.ToString());
        Assert.Contains("INVALID_ARGUMENT: Time target 'garbage' is not understood", result.StandardError);
        Assert.False(Directory.Exists(directory));
        output.WriteLine(result.ToString());
    }

    [Fact]
    public async Task OneShotRestore_UnknownOption_ExitsTwoWithUsage()
    {
        var result = await RunAsync("--bogus");

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.Contains("unknown option '--bogus'", result.StandardError);
        Assert.Contains("usage: backrest-agent restore", result.StandardError);
        output.WriteLine(result.ToString());
    }

    /// <summary><c>backrest-agent restore args...</c> as postgres (setpriv keeps the environment as given).</summary>
    private Task<CommandResult> RunAsync(params string[] args) =>
        OsCommand.RunAsync(
            "setpriv",
            [.. HarnessPaths.AsPostgres(HarnessPaths.Agent), "restore", .. args],
            new CommandOptions
            {
                Environment = fixture.Env.Agent.Environment,
                WorkingDirectory = fixture.Env.Directory.Path,
                Timeout = TimeSpan.FromSeconds(60),
            });
}
