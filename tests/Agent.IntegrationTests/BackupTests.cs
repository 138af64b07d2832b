using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.IntegrationTests;

/// <summary>Backups through the agent's gRPC API against a real PostgreSQL and pgBackRest.</summary>
public sealed class BackupTests
{
    [Fact]
    public async Task StartBackup_FullDiffIncr_ListedWithTypesAndPriors()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.PgBenchInitAsync(1);

        var full = await env.BackupAsync("full");
        await env.Postgres.ExecuteAsync("update pgbench_accounts set abalance = abalance + 1 where aid <= 1000");
        var diff = await env.BackupAsync("diff");
        await env.Postgres.ExecuteAsync("update pgbench_accounts set abalance = abalance + 1 where aid <= 1000");
        var incr = await env.BackupAsync("incr");

        Assert.Equal(("full", "full"), (full.Backup.RequestedType, full.Backup.Type));
        Assert.Equal("diff", diff.Backup.Type);
        Assert.Equal("incr", incr.Backup.Type);
        Assert.Equal(100, incr.Percent);

        var list = await env.Client.ListBackupsAsync(new ListBackupsRequest());
        Assert.Equal(["full", "diff", "incr"], list.Backups.Select(b => b.Type));
        var (f, d, i) = (list.Backups[0], list.Backups[1], list.Backups[2]);
        Assert.Equal(full.Backup.Backup.Label, f.Label);
        Assert.Equal("", f.Prior);
        Assert.Equal(f.Label, d.Prior);
        Assert.Equal(d.Label, i.Prior);
        Assert.All(list.Backups, b =>
        {
            Assert.Equal(1, b.Repo);
            Assert.True(b.DatabaseSize > 0 && b.RepositorySize > 0, $"sizes of {b.Label}");
            Assert.Matches("^[0-9A-F]{24}$", b.WalStart);
            Assert.Matches("^[0-9A-F]+/[0-9A-F]+$", b.LsnStop);
            Assert.True(b.Stopped.ToDateTimeOffset() >= b.Started.ToDateTimeOffset());
        });

        // The same list through backrestctl, as an operator reads it.
        var cli = await env.CliAsync("backups");
        Assert.True(cli.Succeeded, cli.ToString());
        Assert.Contains(i.Label, cli.StandardOutput);
    }

    [Fact]
    public async Task StartBackup_IncrWithoutFull_ReportedAsFullWithWarning()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());

        var done = await env.BackupAsync("incr");

        Assert.Equal("incr", done.Backup.RequestedType);
        Assert.Equal("full", done.Backup.Type);
        Assert.Equal("full", done.Backup.Backup.Type);
        Assert.Contains(done.Warnings, w => w.Contains("pgBackRest took a full backup", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StartBackup_WhileOneRuns_SecondIsAbortedNamingTheFirstWhichSucceeds()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());

        var first = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        var second = await Assert.ThrowsAsync<RpcException>(() => env.Client.StartBackupAsync(new StartBackupRequest { Type = "incr" }).ResponseAsync);

        Assert.Equal(StatusCode.Aborted, second.StatusCode);
        Assert.Contains(first.Id, second.Status.Detail);
        Assert.Contains("full backup to repo1", second.Status.Detail);
        Assert.DoesNotContain("lock", second.Status.Detail, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(OperationState.Succeeded, (await env.Client.WaitAsync(first)).State);
        Assert.Single((await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups);
    }

    [Fact]
    public async Task StartBackup_BadInput_InvalidArgumentAndPgBackRestNeverRuns()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());

        foreach (var (type, repo, expected) in new[]
        {
            ("weekly", 0, "Backup type 'weekly' is not valid"),
            ("", 0, "Backup type '' is not valid"),
            ("FULL", 0, "Backup type 'FULL' is not valid"),
            ("full", 7, "repo 7 is not valid"),
            ("full", -1, "repo -1 is not valid"),
            ("full", 2, "repo 2 is not configured"),
        })
        {
            var error = await Assert.ThrowsAsync<RpcException>(() =>
                env.Client.StartBackupAsync(new StartBackupRequest { Type = type, Repo = repo }).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
            Assert.Contains(expected, error.Status.Detail);
        }

        foreach (var request in new[] { new ListBackupsRequest { Repo = 5 }, new ListBackupsRequest { Repo = 3 } })
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => env.Client.ListBackupsAsync(request).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        }

        var missing = await Assert.ThrowsAsync<RpcException>(() =>
            env.Client.GetOperationAsync(new GetOperationRequest { Id = "backup-nope" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        var empty = await Assert.ThrowsAsync<RpcException>(() =>
            env.Client.GetOperationAsync(new GetOperationRequest()).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, empty.StatusCode);

        // pgBackRest writes <stanza>-backup.log in its log path for every backup it starts: none may exist.
        Assert.Empty(System.IO.Directory.GetFiles(env.Directory.Combine("log"), "*-backup.log"));
        Assert.Empty((await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups);
    }

    [Fact]
    public async Task StartBackup_BeforeStanzaCreate_FailedPreconditionSaysWhatToDo()
    {
        await using var env = await TestEnvironment.CreateAsync();

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" }).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.Contains("CreateStanza", error.Status.Detail);
    }

    [Fact]
    public async Task StartBackup_PlainBackupsByHandMeanwhile_ReportsTheBackupPgBackRestPrintedForIt()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.PgBenchInitAsync(2);
        var byHandBefore = await env.PgBackRestAsync("backup", "--type=full");
        Assert.True(byHandBefore.Succeeded, byHandBefore.ToString());

        // While the agent's full backup runs, someone keeps trying a plain incremental backup by hand: each attempt fails
        // on the backup lock until the agent's pgBackRest lets go of it, and the first one after that is taken while
        // the agent still reads the result.
        var started = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        await WaitUntilCopyingAsync(env, started, 0);

        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var byHand = Task.Run(async () =>
        {
            while (true)
            {
                var attempt = await env.PgBackRestAsync("backup", "--type=incr");
                if (attempt.Succeeded || stop.IsCancellationRequested)
                {
                    return attempt;
                }
            }
        });
        var done = await env.WaitAsync(started);
        var incr = await byHand;

        Assert.True(done.State == OperationState.Succeeded, $"{done.Error}\n{env.Agent.LogTail(30)}");
        Assert.True(incr.Succeeded, incr.ToString());
        var reported = done.Backup.Backup;
        Assert.Equal(("full", "full"), (done.Backup.Type, reported.Type));
        Assert.DoesNotContain(done.Warnings, w => w.Contains("pgBackRest took", StringComparison.Ordinal));
        // pgBackRest's own log names every backup it took, in order: the agent's is the second full one.
        var labels = File.ReadLines(env.Directory.Combine($"log/{env.Stanza}-backup.log"))
            .Select(line => System.Text.RegularExpressions.Regex.Match(line, @"INFO: new backup label = (\S+)$"))
            .Where(m => m.Success).Select(m => m.Groups[1].Value).ToList();
        Assert.Equal(3, labels.Count);
        Assert.Equal(labels[1], reported.Label);
        Assert.EndsWith("I", labels[2], StringComparison.Ordinal);
        // The list answers from the agent's status cache, which knows its own backups at once; one taken by hand
        // behind the agent's back shows after the next refresh, or after an explicit one.
        await env.Client.GetStatusAsync(new GetStatusRequest { Refresh = true });
        Assert.Equal(labels, (await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Select(b => b.Label));
    }

    [Fact]
    public async Task StartBackup_RepositoryReadOnly_OperationErrorCodeSpelledAsTheContract()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        // The stanza exists (the checks before the start pass); the backup itself cannot write its directory.
        var backupPath = Path.Combine(env.Agent.RepositoryPath, "backup", env.Stanza);
        File.SetUnixFileMode(backupPath, UnixFileMode.UserRead | UnixFileMode.UserExecute);

        var started = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        var failed = await env.WaitAsync(started);

        Assert.Equal(OperationState.Failed, failed.State);
        Assert.Equal("FAILED_PRECONDITION", failed.Error.Code);
        Assert.True(failed.Error.PgbackrestCode > 0, failed.Error.ToString());
        var fetched = await env.Client.GetOperationAsync(new GetOperationRequest { Id = started.Id });
        Assert.Equal("FAILED_PRECONDITION", fetched.Error.Code);

        // And as a person reads it.
        var cli = await env.CliAsync("operation", started.Id);
        Assert.Contains("FAILED_PRECONDITION: pgbackrest backup failed", cli.StandardOutput);
    }

    [Fact]
    public async Task Agent_KilledDuringBackup_RestartedAgentTakesTheNextBackup()
    {
        await using var env = await SlowBackupEnvironmentAsync();
        var started = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        await WaitUntilCopyingAsync(env, started, 5);

        env.Agent.Kill();
        await env.Agent.StartAsync();

        var next = await env.BackupAsync("full");
        Assert.Equal("full", next.Backup.Type);
        var list = await env.Client.ListBackupsAsync(new ListBackupsRequest());
        Assert.Contains(list.Backups, b => b.Label == next.Backup.Backup.Label);
        // Whether the orphaned pgBackRest died of SIGPIPE or was stopped by the restarted agent, no
        // process from the interrupted backup may still hold the stanza's backup lock.
        Assert.False((await OsCommand.RunAsync("pgrep", ["-f", "--", $"--config={env.Agent.ConfigPath} .*backup --type=full"])).Succeeded);
    }

    /// <summary>
    /// A container restart kills the agent alone (SIGKILL to PID 1 of the sidecar, or the OOM killer), not its process
    /// tree: pgBackRest, holding the stanza's backup lock, lives on. The restarted agent must stop it before serving,
    /// or every backup fails on the lock.
    /// </summary>
    [Fact]
    public async Task Agent_KilledAloneDuringBackup_RestartedAgentStopsTheLeftoverAndTakesTheNextBackup()
    {
        await using var env = await SlowBackupEnvironmentAsync();
        var started = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        await WaitUntilCopyingAsync(env, started, 5);

        var backupPattern = $"--config={env.Agent.ConfigPath} .*backup --type=full";
        var leftover = (await OsCommand.RunAsync("pgrep", ["-f", "--", backupPattern])).EnsureSuccess().StandardOutput
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();
        var agentPid = env.Agent.ProcessId!.Value;
        env.Agent.Kill(entireProcessTree: false);

        // Without this the test would prove nothing: the leftover outlives the agent (it does not die of the closed pipe).
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.All(leftover, pid => Assert.True(IsAlive(pid), $"pgBackRest {pid} died with agent {agentPid}: nothing left for the reaper"));

        await env.Agent.StartAsync();
        Assert.All(leftover, pid => Assert.False(IsAlive(pid), $"pgBackRest {pid} of the killed agent still runs after the restart"));
        Assert.Contains("left running by a previous agent", env.Agent.LogTail(200));

        var next = await env.BackupAsync("full");
        Assert.Equal("full", next.Backup.Type);
    }

    /// <summary>Slow settings (gz 9, one process, pgbench scale 8) so that a backup is surely still copying when a test acts.</summary>
    private static async Task<TestEnvironment> SlowBackupEnvironmentAsync()
    {
        var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?>
            {
                ["Agent__PgBackRest__CompressType"] = "gz",
                ["Agent__PgBackRest__CompressLevel"] = "9",
                ["Agent__PgBackRest__ProcessMax"] = "1",
            },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.PgBenchInitAsync(8);
        return env;
    }

    /// <summary>Watches the running backup until it reports more than <paramref name="percent"/> (its pgBackRest then holds the lock).</summary>
    private static async Task WaitUntilCopyingAsync(TestEnvironment env, Operation started, double percent)
    {
        using var copying = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        using var call = env.Client.WatchOperation(new WatchOperationRequest { Id = started.Id }, cancellationToken: copying.Token);
        await foreach (var update in call.ResponseStream.ReadAllAsync(copying.Token))
        {
            Assert.Equal(OperationState.Running, update.State);
            if (update.Percent > percent)
            {
                return;
            }
        }
    }

    /// <summary>Running, not a zombie (a leftover re-parented to an init that has not reaped it yet is dead).</summary>
    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..][0] is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }
}
