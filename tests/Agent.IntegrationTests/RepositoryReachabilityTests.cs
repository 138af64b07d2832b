using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.IntegrationTests.Harness.Emulators;
using Backrest.Agent.V1;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// Reachability probes through the SDKs against the emulators: reachable when up; a dead emulator, a wrong key, a
/// missing bucket or container, an unwritable posix directory each reported with its error class in status and
/// /metrics within one probe interval, while status and a scrape stay fast.
/// </summary>
[Collection(StorageEmulatorsCollection.Name)]
public sealed partial class RepositoryReachabilityTests(StorageEmulators emulators, ITestOutputHelper output)
{
    private const int IntervalSeconds = 2;

    /// <summary>Loose: a cached answer takes milliseconds; pgBackRest against a dead repository would take seconds.</summary>
    private static readonly TimeSpan FastAnswer = TimeSpan.FromSeconds(1);

    [Theory]
    [InlineData("s3")]
    [InlineData("gcs")]
    [InlineData("azure")]
    public async Task Probe_EmulatorStopped_ConnectErrorWithinOneIntervalWhileStatusAndMetricsStayFast(string kind)
    {
        await using StorageEmulator emulator = kind switch { "s3" => new S3Server(), "gcs" => new GcsEmulator(), _ => new Azurite() };
        await output.OnFailureAsync(() => emulator.LogTail(), async () =>
        {
            await emulator.StartAsync();
            await using var env = await CreateAsync(emulator.RepositorySettings(1, emulators.UniquePath("probe")));

            var up = await WaitForProbeAsync(env, repo: 2, r => r.Reachable);
            Assert.Equal("", up.ErrorClass);
            Assert.Equal(kind, (await StatusAsync(env)).Pgbackrest.Repositories.Single(r => r.Repo == 2).Type);
            Assert.Equal(1, MetricValue(await ScrapeAsync(env), "pgbackrest_repo_up", "repo=\"2\""));

            emulator.Stop();
            var stoppedAt = Stopwatch.StartNew();
            var down = await WaitForProbeAsync(env, repo: 2, r => !r.Reachable);
            Assert.True(stoppedAt.Elapsed < TimeSpan.FromSeconds(IntervalSeconds * 3 + 5), $"noticed after {stoppedAt.Elapsed.TotalSeconds:0.0} s");
            Assert.Equal("connect", down.ErrorClass);
            Assert.NotEmpty(down.Message);

            var metrics = await ScrapeAsync(env);
            Assert.Equal(0, MetricValue(metrics, "pgbackrest_repo_up", "repo=\"2\""));
            Assert.Equal(1, MetricValue(metrics, "pgbackrest_repo_probe_error_info", "class=\"connect\""));
            Assert.Equal(1, MetricValue(metrics, "pgbackrest_repo_up", "repo=\"1\""));

            // While repo2 is dead: answers come from the cache. Timed loosely; the figure belongs in a benchmark.
            var slowest = TimeSpan.Zero;
            for (var i = 0; i < 5; i++)
            {
                var clock = Stopwatch.StartNew();
                await StatusAsync(env);
                await ScrapeAsync(env);
                await env.Client.ListBackupsAsync(new ListBackupsRequest());
                slowest = clock.Elapsed > slowest ? clock.Elapsed : slowest;
            }

            Assert.True(slowest < FastAnswer, $"status + scrape + list took {slowest.TotalMilliseconds:0} ms while repo2 was dead");
            var cli = await env.CliAsync("status");
            Assert.NotEqual(0, cli.ExitCode);
            Assert.Contains("repo2", cli.StandardOutput + cli.StandardError);
            output.WriteLine($"{kind}: dead noticed after {stoppedAt.Elapsed.TotalSeconds:0.0} s; slowest status+scrape+list {slowest.TotalMilliseconds:0} ms");
        });
    }

    [Fact]
    public async Task BackupRestoreDelete_OnTheLiveRepositoryWhileAnotherIsDead_StartPromptly()
    {
        await using var s3 = new S3Server();
        await output.OnFailureAsync(() => s3.LogTail(), async () =>
        {
            await s3.StartAsync();
            await using var env = await CreateAsync(s3.RepositorySettings(1, emulators.UniquePath("dead-beside")));
            await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
            var full = (await env.BackupAsync("full", repo: 1)).BackupLabel;
            var incr = (await env.BackupAsync("incr", repo: 1)).BackupLabel;

            s3.Stop();
            await WaitForProbeAsync(env, repo: 2, r => !r.Reachable);

            // A backup to repo1 starts at once; it could not end (PostgreSQL keeps each segment until every repository
            // stored it, so the backup's last segment waits for repo2), so it is cancelled once pgBackRest runs.
            var backup = await TimedAsync("StartBackup full to repo1", () =>
                env.Client.StartBackupAsync(new StartBackupRequest { Type = "full", Repo = 1 }).ResponseAsync);
            await AgentTestExtensions.WaitUntilAsync(
                async () => (await env.Client.GetOperationAsync(new GetOperationRequest { Id = backup.Id })).Percent > 0,
                TimeSpan.FromSeconds(30), () => $"the backup to repo1 copied nothing\n{env.Agent.LogTail(20)}");
            await env.Client.CancelOperationAsync(new CancelOperationRequest { Id = backup.Id });
            Assert.Equal(OperationState.Cancelled, (await env.WaitAsync(backup)).State);

            var restore = await TimedAsync("StartRestore from repo1", () => env.Client.StartRestoreAsync(new StartRestoreRequest
            {
                Repo = 1, Set = full, TargetType = "immediate", DataDirectory = env.Directory.Combine("copy"),
            }).ResponseAsync);
            var restored = await env.WaitAsync(restore);
            Assert.True(restored.State == OperationState.Succeeded, $"{restored.Error}\n{env.Agent.LogTail(30)}");
            Assert.Equal((1, full), (restored.Restore.Repo, restored.Restore.BackupLabel));

            var preview = await TimedAsync("DeleteBackup dry run on repo1", () => env.Client.DeleteBackupAsync(
                new DeleteBackupRequest { Label = incr, Repo = 1, Force = true, DryRun = true }).ResponseAsync);
            Assert.Equal([incr], preview.Removed);
            await TimedAsync("DeleteBackup on repo1", () => env.Client.DeleteBackupAsync(
                new DeleteBackupRequest { Label = incr, Repo = 1, Force = true }).ResponseAsync);
            Assert.Equal([full], (await env.Client.ListBackupsAsync(new ListBackupsRequest { Repo = 1 })).Backups.Select(b => b.Label));
        });
    }

    [Theory]
    [InlineData("s3 wrong key", "auth")]
    // Azurite answers a bad SharedKey signature with 403 AuthorizationFailure, which real Azure uses for a missing
    // permission (its answer to a bad key is AuthenticationFailed, classified auth): the class follows the code.
    [InlineData("azure wrong key", "permission")]
    [InlineData("s3 missing bucket", "not-found")]
    [InlineData("azure missing container", "not-found")]
    public Task Probe_BrokenRepository_ReportsErrorClass(string broken, string errorClass) => output.OnFailureAsync(emulators.LogTails, async () =>
    {
        var at = "Agent__Repositories__1__";
        var settings = new Dictionary<string, string?>(emulators.For(broken.Split(' ')[0]).RepositorySettings(1, emulators.UniquePath("broken")));
        switch (broken)
        {
            case "s3 wrong key":
                // s3rver checks the access key id but not SigV4 signatures (so a wrong secret would pass).
                settings[at + "S3__Key"] = "NOT-S3RVER";
                break;
            case "azure wrong key":
                var container = $"private-{Guid.NewGuid():N}"[..30];
                await emulators.Azure.CreateContainersAsync(publicRead: false, container);
                settings[at + "Azure__Container"] = container;
                settings[at + "Azure__Key"] = Convert.ToBase64String(new byte[64]);
                break;
            case "s3 missing bucket":
                settings[at + "S3__Bucket"] = "no-such-bucket";
                break;
            case "azure missing container":
                settings[at + "Azure__Container"] = "no-such-container";
                break;
        }

        await using var env = await CreateAsync(settings);
        var probe = await WaitForProbeAsync(env, repo: 2, r => !r.Reachable);
        Assert.Equal(errorClass, probe.ErrorClass);
        Assert.Equal(1, MetricValue(await ScrapeAsync(env), "pgbackrest_repo_probe_error_info", $"class=\"{errorClass}\""));
        Assert.True((await WaitForProbeAsync(env, repo: 1, r => r.Reachable)).Reachable);
    });

    /// <summary>
    /// A service-account key (KeyType service) is JSON the GCS client reads by reflection, which NativeAOT keeps only
    /// for the assemblies the agent's project roots: read whole, the client signs its requests with the key (the
    /// emulator takes any bearer token) and the probe succeeds; dropped by the trimmer, the key would not parse.
    /// </summary>
    [Fact]
    public Task Probe_GcsServiceAccountKey_ReadAndUsed() => output.OnFailureAsync(emulators.LogTails, async () =>
    {
        using var keys = TestDirectory.Create();
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var key = System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["type"] = "service_account",
            ["project_id"] = "backrest-test",
            ["private_key_id"] = "test-key",
            ["private_key"] = rsa.ExportPkcs8PrivateKeyPem(),
            ["client_email"] = "agent@backrest-test.iam.gserviceaccount.com",
            ["client_id"] = "1",
            ["token_uri"] = "https://oauth2.googleapis.com/token",
        });
        var settings = new Dictionary<string, string?>(emulators.Gcs.RepositorySettings(1, emulators.UniquePath("service-key")))
        {
            ["Agent__Repositories__1__Gcs__KeyType"] = "service",
            ["Agent__Repositories__1__Gcs__Key"] = keys.WriteFile("gcs-key.json", key),
        };

        await using var env = await CreateAsync(settings);

        Assert.True((await WaitForProbeAsync(env, repo: 2, r => r.Reachable)).Reachable);
    });

    [Fact]
    public async Task Probe_PosixDirectoryTurnsReadOnly_PermissionWithinOneInterval()
    {
        await using var env = await CreateAsync(new Dictionary<string, string?>());
        await WaitForProbeAsync(env, repo: 1, r => r.Reachable);

        File.SetUnixFileMode(env.Agent.RepositoryPath, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        var probe = await WaitForProbeAsync(env, repo: 1, r => !r.Reachable);

        Assert.Equal("permission", probe.ErrorClass);
        Assert.Equal(0, MetricValue(await ScrapeAsync(env), "pgbackrest_repo_up", "repo=\"1\""));
    }

    /// <summary>repo1 posix (the harness's), repo2 as given; probes every <see cref="IntervalSeconds"/> s.</summary>
    private static Task<TestEnvironment> CreateAsync(IReadOnlyDictionary<string, string?> repositories)
    {
        var settings = new Dictionary<string, string?>(repositories)
        {
            ["Agent__Status__IntervalSeconds"] = IntervalSeconds.ToString(CultureInfo.InvariantCulture),
            ["Agent__Status__ProbeTimeoutSeconds"] = "2",
            ["Agent__PgBackRest__IoTimeoutSeconds"] = "2",
        };
        return TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = settings });
    }

    /// <summary>
    /// Loose: reading the acted-on repository alone takes milliseconds here; reading every repository waits for the
    /// dead one (8 s here with io-timeout 2 s, when the services still ran a plain pgbackrest info).
    /// </summary>
    private async Task<T> TimedAsync<T>(string what, Func<Task<T>> call)
    {
        var clock = Stopwatch.StartNew();
        var result = await call();
        output.WriteLine($"{what}: {clock.ElapsedMilliseconds} ms with repo2 dead");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(6), $"{what} took {clock.Elapsed.TotalSeconds:0.0} s with repo2 dead");
        return result;
    }

    private static async Task<AgentStatus> StatusAsync(TestEnvironment env) =>
        await env.Client.GetStatusAsync(new GetStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(10));

    /// <summary>Polls cached status (never refresh=true: the loop must find it) until repo's probe matches.</summary>
    private static async Task<RepositoryReachability> WaitForProbeAsync(TestEnvironment env, int repo, Func<RepositoryReachability, bool> condition)
    {
        RepositoryReachability? last = null;
        await AgentTestExtensions.WaitUntilAsync(
            async () =>
            {
                last = (await StatusAsync(env)).Pgbackrest.Repositories.FirstOrDefault(r => r.Repo == repo)?.Reachability;
                return last is not null && condition(last);
            },
            TimeSpan.FromSeconds(IntervalSeconds * 3 + 10),
            () => $"repo{repo}'s probe: {last}\n{env.Agent.LogTail(20)}");
        return last!;
    }

    private static async Task<string> ScrapeAsync(TestEnvironment env)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        return await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
    }

    private static double MetricValue(string exposition, string name, string labelFragment)
    {
        var line = exposition.Split('\n').FirstOrDefault(l =>
            l.StartsWith(name + "{", StringComparison.Ordinal) && l.Contains(labelFragment, StringComparison.Ordinal));
        Assert.True(line is not null, $"{name} with {labelFragment} missing in\n{exposition}");
        return double.Parse(Value().Match(line!).Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"\s(\S+)$")]
    private static partial Regex Value();
}
