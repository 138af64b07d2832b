using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// A dead repository beside a healthy one, with no emulator: an S3 repository on a closed port of 127.0.0.1 and a posix
/// repository the agent cannot write. Status and /metrics answer from the cache at once and name each one; the healthy
/// repository stays healthy, in status and in check.
/// </summary>
public sealed class RepositoryStatusTests(ITestOutputHelper output)
{
    private const string Secret = "s3-secret-never-shown-anywhere";
    private static readonly TimeSpan Quick = TimeSpan.FromSeconds(2);

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static Dictionary<string, string?> DeadS3(int index) => new()
    {
        [$"Agent__Repositories__{index}__Type"] = "s3",
        [$"Agent__Repositories__{index}__Path"] = "/repo",
        [$"Agent__Repositories__{index}__S3__Bucket"] = "bucket",
        [$"Agent__Repositories__{index}__S3__Endpoint"] = "127.0.0.1",
        [$"Agent__Repositories__{index}__S3__Port"] = ClosedPort().ToString(),
        [$"Agent__Repositories__{index}__S3__Region"] = "us-east-1",
        [$"Agent__Repositories__{index}__S3__UriStyle"] = "path",
        [$"Agent__Repositories__{index}__S3__VerifyTls"] = "false",
        [$"Agent__Repositories__{index}__S3__Key"] = "AKIAEXAMPLEKEY",
        [$"Agent__Repositories__{index}__S3__KeySecret"] = Secret,
        ["Agent__Status__IntervalSeconds"] = "1",
        ["Agent__PgBackRest__IoTimeoutSeconds"] = "1",
    };

    [Fact]
    public async Task GetStatusAndMetrics_DeadS3AndUnwritablePosix_AnswerAtOnceNamingEachWithItsErrorClass()
    {
        var settings = DeadS3(1);
        var dir = TestDirectory.Create();
        try
        {
            // Owned by root, mode 0755: the agent (user postgres) may not create the repository inside.
            var locked = Directory.CreateDirectory(dir.Combine("locked")).FullName;
            settings["Agent__Repositories__2__Type"] = "posix";
            settings["Agent__Repositories__2__Path"] = Path.Combine(locked, "repo");
            await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = settings });

            var status = await PollStatusAsync(env, s => s.Pgbackrest.Repositories.Count == 3 &&
                                                        s.Pgbackrest.Repositories.All(r => r.Reachability is not null));
            var repos = status.Pgbackrest.Repositories;
            output.WriteLine(status.Pgbackrest.ToString());
            Assert.Equal(["posix", "s3", "posix"], repos.Select(r => r.Type));
            Assert.True(repos[0].Reachability.Reachable, repos[0].ToString());
            Assert.True(repos[0].Reachability.HasFreeBytes && repos[0].Reachability.FreeBytes > 0);
            Assert.Equal((false, "connect"), (repos[1].Reachability.Reachable, repos[1].Reachability.ErrorClass));
            Assert.Equal((false, "permission"), (repos[2].Reachability.Reachable, repos[2].Reachability.ErrorClass));
            Assert.Contains(locked, repos[2].Reachability.Message);

            var clock = Stopwatch.StartNew();
            using var http = new HttpClient();
            var metrics = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
            Assert.True(clock.Elapsed < Quick, $"/metrics took {clock.Elapsed}");
            Assert.Contains("pgbackrest_repo_up{stanza=\"test\",repo=\"1\"} 1", metrics);
            Assert.Contains("pgbackrest_repo_up{stanza=\"test\",repo=\"2\"} 0", metrics);
            Assert.Contains("pgbackrest_repo_probe_error_info{stanza=\"test\",repo=\"2\",class=\"connect\"} 1", metrics);
            Assert.Contains("pgbackrest_repo_probe_error_info{stanza=\"test\",repo=\"3\",class=\"permission\"} 1", metrics);
            Assert.DoesNotContain("repo=\"1\",class=", metrics);

            var cli = await env.CliAsync("status");
            output.WriteLine(cli.ToString());
            Assert.Equal(1, cli.ExitCode);
            Assert.Contains("repo2 (s3) is unreachable: connect", cli.StandardError);
            Assert.Contains("repo3 (posix) is unreachable: permission", cli.StandardError);

            foreach (var text in new[] { metrics, status.ToString(), cli.StandardOutput + cli.StandardError, File.ReadAllText(env.Agent.LogFile) })
            {
                Assert.DoesNotContain(Secret, text);
            }
        }
        finally
        {
            dir.Dispose();
        }
    }

    [Fact]
    public async Task Check_OneRepositoryDead_TheHealthyOneStaysOk()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = DeadS3(1) });
        // The stanza can only be created where a repository answers: create it on repo1 alone, with the repo1-only
        // configuration the agent's per-repository check writes beside its own.
        await env.Client.CheckAsync(new CheckRequest());
        (await OsCommand.RunAsPostgresAsync(HarnessPaths.PgBackRest, [$"--config={env.Agent.ConfigPath}.repo1", $"--stanza={env.Stanza}", "stanza-create"]))
            .EnsureSuccess();

        var clock = Stopwatch.StartNew();
        var check = await env.Client.CheckAsync(new CheckRequest());
        output.WriteLine($"{clock.Elapsed}: {check}");
        Assert.False(check.Ok);
        Assert.Equal([(1, true), (2, false)], check.Repositories.Select(r => (r.Repo, r.Ok)));

        // Status, meanwhile, shows repo1's info and names repo2, within one interval.
        var status = await PollStatusAsync(env, s => s.Pgbackrest.Repositories.Count == 2 && s.Pgbackrest.Repositories[0].StatusCode == 2 &&
                                                    s.Pgbackrest.Repositories[1].Reachability is { Reachable: false });
        Assert.Equal("no valid backups", status.Pgbackrest.Repositories[0].StatusMessage);
        Assert.Equal("connect", status.Pgbackrest.Repositories[1].Reachability.ErrorClass);

        // The check's WAL could not reach repo2, so PostgreSQL keeps it: repo2 is named as blocking, and its failures
        // are counted against repo2 alone.
        status = await PollStatusAsync(env, s => s.Archive.BlockingRepos.Count > 0);
        output.WriteLine(status.Archive.ToString());
        Assert.Equal([2], status.Archive.BlockingRepos);
        Assert.Equal(0, status.Archive.Repositories[0].Failed);
        Assert.True(status.Archive.Repositories[1].Failed > 0);
        Assert.True(status.Archive.HasWalVolumeFreeBytes);
    }

    /// <summary>Every GetStatus must answer at once, dead repository or not; returns the first that satisfies the condition.</summary>
    private static async Task<AgentStatus> PollStatusAsync(TestEnvironment env, Func<AgentStatus, bool> done)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var clock = Stopwatch.StartNew();
            var status = await env.Client.GetStatusAsync(new GetStatusRequest());
            Assert.True(clock.Elapsed < Quick, $"GetStatus took {clock.Elapsed}");
            if (done(status))
            {
                return status;
            }

            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(30), $"status never got there: {status.Pgbackrest}\n{env.Agent.LogTail()}");
            await Task.Delay(200);
        }
    }
}
