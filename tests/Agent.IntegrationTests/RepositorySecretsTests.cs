using System.Text;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.IntegrationTests.Harness.Emulators;
using Backrest.Agent.V1;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests;

/// <summary>Repository secrets given as files: used by pgBackRest, seen nowhere else, and re-read when they change.</summary>
[Collection(StorageEmulatorsCollection.Name)]
public sealed class RepositorySecretsTests(StorageEmulators emulators, ITestOutputHelper output)
{
    [Fact]
    public Task Secrets_FromFiles_NowhereButTheConfigAndRotatedKeyUsedWithoutRestart() => output.OnFailureAsync(emulators.LogTails, async () =>
    {
        var cipherPass = $"cipher-pass-{Guid.NewGuid():N}";
        var gcsToken = $"gcs-token-{Guid.NewGuid():N}";
        string[] secrets = [cipherPass, Azurite.AccountKey, gcsToken];
        using var secretFiles = TestDirectory.Create();
        var cipherFile = secretFiles.WriteFile("cipher-pass", cipherPass + "\n");
        var azureKeyFile = secretFiles.WriteFile("azure-key", Azurite.AccountKey + "\n");
        var gcsKeyFile = secretFiles.WriteFile("gcs-token", gcsToken);
        // A private container: Azurite lets a wrong key read a public one anonymously.
        var container = $"private-{Guid.NewGuid():N}"[..30];
        await emulators.Azure.CreateContainersAsync(publicRead: false, container);

        // repo1 posix, encrypted; repo2 azure; repo3 gcs (token). Every secret from a file.
        var settings = new Dictionary<string, string?>
        {
            ["Agent__Repositories__0__CipherType"] = "aes-256-cbc",
            ["Agent__Repositories__0__CipherPassFile"] = cipherFile,
        };
        foreach (var (key, value) in emulators.Azure.RepositorySettings(1, emulators.UniquePath("secrets")))
        {
            settings[key] = value;
        }

        foreach (var (key, value) in emulators.Gcs.RepositorySettings(2, emulators.UniquePath("secrets")))
        {
            settings[key] = value;
        }

        settings["Agent__Repositories__1__Azure__Container"] = container;
        settings["Agent__Repositories__1__Azure__Key"] = null;
        settings["Agent__Repositories__1__Azure__KeyFile"] = azureKeyFile;
        settings["Agent__Repositories__2__Gcs__Key"] = null;
        settings["Agent__Repositories__2__Gcs__KeyFile"] = gcsKeyFile;
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { AgentSettings = settings });
        Assert.DoesNotContain(secrets, s => string.Join('\n', env.Agent.Environment.Values).Contains(s, StringComparison.Ordinal));

        await using var sampler = new ChildSampler(env, secrets);
        var replies = new StringBuilder();
        replies.AppendLine((await env.Client.CreateStanzaAsync(new CreateStanzaRequest())).ToString());
        await env.Postgres.ExecuteAsync("create table rows as select g as id from generate_series(1, 10000) g");
        replies.AppendLine((await env.BackupAsync("full", repo: 1)).ToString());
        var segment = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(segment, TimeSpan.FromSeconds(60));
        var azureBackup = await env.BackupAsync("full", repo: 2);
        replies.AppendLine(azureBackup.ToString());

        // Rotation: the key file changes under the running agent; the next pgBackRest run uses the new content.
        await File.WriteAllTextAsync(azureKeyFile, Convert.ToBase64String(new byte[64]) + "\n");
        var refused = await env.WaitAsync(await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full", Repo = 2 }));
        Assert.Equal(OperationState.Failed, refused.State);
        replies.AppendLine(refused.ToString());
        await File.WriteAllTextAsync(azureKeyFile, Azurite.AccountKey + "\n");
        replies.AppendLine((await env.BackupAsync("full", repo: 2)).ToString());

        replies.AppendLine((await env.Client.GetStatusAsync(new GetStatusRequest { Refresh = true })).ToString());
        replies.AppendLine((await env.Client.ListBackupsAsync(new ListBackupsRequest())).ToString());
        replies.AppendLine((await env.Client.GetRecoveryWindowAsync(new GetRecoveryWindowRequest())).ToString());
        replies.AppendLine((await env.Client.GetOperationAsync(new GetOperationRequest { Id = azureBackup.Id })).ToString());
        replies.AppendLine((await env.CliAsync("status", "--json")).StandardOutput);
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
        var logs = string.Join('\n', Directory.EnumerateFiles(env.Directory.Combine("log")).Append(env.Agent.LogFile).Select(File.ReadAllText));

        var children = await sampler.StopAsync();
        output.WriteLine($"sampled {children.Count} pgBackRest processes: {string.Join(", ", children.Take(12))}");
        Assert.Contains(children, c => c.Contains("backup", StringComparison.Ordinal));
        Assert.Contains(children, c => c.Contains("archive-push", StringComparison.Ordinal));
        Assert.Empty(sampler.Leaks);
        foreach (var secret in secrets)
        {
            Assert.False(replies.ToString().Contains(secret, StringComparison.Ordinal), "a secret in a gRPC reply or the CLI's output");
            Assert.False(metrics.Contains(secret, StringComparison.Ordinal), "a secret in /metrics");
            Assert.False(logs.Contains(secret, StringComparison.Ordinal), "a secret in the agent's or pgBackRest's log");
        }
    });

    /// <summary>
    /// Reads /proc/&lt;pid&gt;/cmdline and environ of every pgBackRest process of the environment (children of the agent,
    /// and detached async archivers naming its directory) every few milliseconds until stopped.
    /// </summary>
    private sealed class ChildSampler : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;
        private readonly HashSet<string> _seen = [];
        private readonly List<string> _leaks = [];

        public ChildSampler(TestEnvironment env, string[] secrets) => _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                foreach (var pid in Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(p => p!.All(char.IsAsciiDigit)))
                {
                    try
                    {
                        var cmdline = File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
                        if (!cmdline.StartsWith("pgbackrest", StringComparison.Ordinal) && !cmdline.Contains("/pgbackrest ", StringComparison.Ordinal))
                        {
                            continue;
                        }

                        if (!IsChildOf(pid!, env.Agent.ProcessId) && !cmdline.Contains(env.Directory.Path, StringComparison.Ordinal))
                        {
                            continue;
                        }

                        var environ = File.ReadAllText($"/proc/{pid}/environ").Replace('\0', ' ');
                        lock (_seen)
                        {
                            _seen.Add($"{pid}: {cmdline.Trim()}");
                            _leaks.AddRange(secrets.Where(s => cmdline.Contains(s, StringComparison.Ordinal) || environ.Contains(s, StringComparison.Ordinal))
                                .Select(_ => $"pid {pid} ({cmdline.Trim()}) holds a secret in its argv or environment"));
                        }
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        // Ended meanwhile.
                    }
                }

                await Task.Delay(5);
            }
        });

        public IReadOnlyList<string> Leaks
        {
            get
            {
                lock (_seen)
                {
                    return [.. _leaks];
                }
            }
        }

        public async Task<IReadOnlyList<string>> StopAsync()
        {
            await _stop.CancelAsync();
            await _loop.WaitAsync(TimeSpan.FromSeconds(10));
            lock (_seen)
            {
                return [.. _seen];
            }
        }

        public async ValueTask DisposeAsync()
        {
            await StopAsync();
            _stop.Dispose();
        }

        private static bool IsChildOf(string pid, int? ancestor)
        {
            for (var current = pid; ancestor is not null && current is not "0" and not "1";)
            {
                var stat = File.ReadAllText($"/proc/{current}/stat");
                current = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1];
                if (current == ancestor.ToString())
                {
                    return true;
                }
            }

            return false;
        }
    }
}
