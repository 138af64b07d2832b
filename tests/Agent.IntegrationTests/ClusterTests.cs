using System.Text.Json.Nodes;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// One cluster, many agents: a real primary and two real streaming replicas on loopback ports, an agent beside each,
/// one shared repository. backrestctl sees them as one cluster.
/// </summary>
public sealed class ClusterTests(ITestOutputHelper output)
{
    private static Task<CommandResult> CliAsync(params string[] args)
    {
        var (program, leading) = HarnessPaths.Cli;
        return OsCommand.RunAsync(program, [.. leading, .. args]);
    }

    [Fact]
    public async Task Status_PrimaryAndTwoStreamingReplicas_OneRowEachWithRoleAndLag_UnreachableAgentDegrades()
    {
        await using var cluster = await ReplicationCluster.CreateAsync(replicas: 2);
        var primary = cluster.Primary.Agent;
        var standbys = string.Join(",", cluster.Replicas.Select(r => r.Agent.Address));

        // GetRole: PostgreSQL's view only, on every agent.
        var roles = await Task.WhenAll(cluster.Agents.Select(a => a.Client.GetRoleAsync(new GetRoleRequest()).ResponseAsync));
        Assert.Equal(["primary", "standby", "standby"], roles.Select(r => r.Role));
        Assert.Equal(["pg-0", "pg-1", "pg-2"], roles.Select(r => r.Member));
        Assert.All(roles, r => Assert.Equal(1, r.Timeline));
        Assert.All(roles.Skip(1), r => Assert.True(r.HasReplayLagSeconds && r.ReceiveLsn.Length > 0, r.ToString()));

        // --cluster resolves a name (here an address literal: one record) and --agent adds the others.
        var json = await CliAsync("--cluster", primary.Address, "--agent", standbys, "--json", "status");
        Assert.True(json.ExitCode == 0, json.ToString());
        var document = JsonNode.Parse(json.StandardOutput)!;
        Assert.Equal(primary.Address, (string?)document["cluster"]);
        var summary = document["summary"]!;
        Assert.Equal(3, (int)summary["agents"]!);
        Assert.Equal(1, (int)summary["primaries"]!);
        Assert.Equal(2, (int)summary["standbys"]!);
        Assert.False((bool)summary["degraded"]!);
        var rows = document["agents"]!.AsArray();
        Assert.Equal(["primary", "standby", "standby"], rows.Select(r => (string?)r!["role"]!["role"]));
        Assert.All(rows.Skip(1), r => Assert.True((long)r!["lagBytes"]! >= 0));
        Assert.Null(rows[0]!["lagBytes"]);
        Assert.All(rows, r => Assert.True((bool)r!["repositories"]![0]!["reachable"]!));

        // The human view: one row per agent, a summary; an agent that does not answer is a row with its error, and degrades.
        var closed = $"127.0.0.1:{FreePort.Next()}";
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var degraded = await CliAsync("--agent", $"{primary.Address},{standbys},{closed}", "--timeout", "5", "status");
        output.WriteLine(degraded.StandardOutput);
        Assert.Equal(1, degraded.ExitCode);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"status took {clock.Elapsed.TotalSeconds:0.0} s");
        var lines = degraded.StandardOutput.Split('\n');
        Assert.Contains(lines, l => l.StartsWith(primary.Address, StringComparison.Ordinal) && l.Contains("pg-0") && l.Contains("primary tl1"));
        Assert.Equal(2, lines.Count(l => l.Contains("standby tl1", StringComparison.Ordinal)));
        Assert.Contains(lines, l => l.StartsWith(closed, StringComparison.Ordinal) && l.Contains("UNREACHABLE"));
        Assert.Contains("cluster: 4 agents, 1 primary, 2 standby, 0 PostgreSQL down, 1 unreachable", degraded.StandardOutput);
        Assert.Contains("health: DEGRADED", degraded.StandardOutput);

        // An in-place restore through the cluster is refused while any instance runs PostgreSQL, naming them; into a new
        // directory it goes to the agent (which refuses here only because there is no backup yet).
        var all = string.Join(",", cluster.Agents.Select(a => a.Address));
        var noMember = await CliAsync("--agent", all, "restore");
        Assert.Equal(2, noMember.ExitCode);
        var inPlace = await CliAsync("--agent", all, "restore", "--member", "pg-1");
        Assert.Equal(1, inPlace.ExitCode);
        Assert.Contains("an in-place restore needs PostgreSQL stopped on every instance of the cluster; it runs on " +
            $"pg-0 ({primary.Address}, primary), pg-1 ({cluster.Replicas[0].Agent.Address}, standby), pg-2 ({cluster.Replicas[1].Agent.Address}, standby)",
            inPlace.StandardError);
        var copy = await CliAsync("--agent", all, "restore", "--member", "pg-1", "--data-directory", cluster.Replicas[0].Directory.Combine("copy"));
        Assert.Equal(1, copy.ExitCode);
        Assert.DoesNotContain("in-place", copy.StandardError);
        Assert.Contains(cluster.Replicas[0].Agent.Address, copy.StandardError);
    }

    [Fact]
    public async Task CoordinatedBackup_ToPrimaryOrFromStandbyOverTls_RestoresExactRows_SecondRefused_SplitBrainExactlyOneRuns()
    {
        // pg-0 runs pgBackRest's TLS server; pg-1 is the cluster's standby backup source and reaches it with a client certificate.
        using var pki = TestDirectory.Create();
        var authority = new TestAuthority(pki.Path, "cluster-ca");
        var server = authority.IssueServer("pg-server");
        var client = authority.IssueClient("backrest-agent").Files;
        foreach (var file in new[] { server.KeyFile, client.KeyFile })
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            TestDirectory.ChownToPostgres(file);
        }

        var serverPort = FreePort.Next();
        const int Rows = 300_000;
        PostgresCluster? primaryPostgres = null;
        await using var cluster = await ReplicationCluster.CreateAsync(replicas: 2, rows: Rows, perMember: member => member switch
        {
            "pg-0" => new Dictionary<string, string?>
            {
                ["Agent__Cluster__TlsServer__Port"] = serverPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Agent__Cluster__TlsServer__Address"] = "127.0.0.1",
                ["Agent__Cluster__TlsServer__CertificateFile"] = server.CertificateFile,
                ["Agent__Cluster__TlsServer__KeyFile"] = server.KeyFile,
                ["Agent__Cluster__TlsServer__CaFile"] = authority.CertificateFile,
            },
            "pg-1" => new Dictionary<string, string?>
            {
                ["Agent__Cluster__BackupFrom"] = "standby",
                ["Agent__Cluster__Primary__Host"] = "localhost",
                ["Agent__Cluster__Primary__Port"] = serverPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Agent__Cluster__Primary__CertificateFile"] = client.CertificateFile,
                ["Agent__Cluster__Primary__KeyFile"] = client.KeyFile,
                ["Agent__Cluster__Primary__CaFile"] = authority.CertificateFile,
                // On Kubernetes every pod mounts its data at the same path; here each instance has its own.
                ["Agent__Cluster__Primary__DataDirectory"] = primaryPostgres!.DataDirectory,
                ["Agent__Cluster__Primary__PostgresPort"] = primaryPostgres.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Agent__Cluster__Primary__SocketDirectory"] = primaryPostgres.SocketDirectory,
            },
            _ => null,
        }, onPrimary: postgres => primaryPostgres = postgres);
        var all = string.Join(",", cluster.Agents.Select(a => a.Address));
        var primary = cluster.Primary.Agent;
        var source = cluster.Replicas[0].Agent;

        var started = await CliAsync("--agent", all, "backup", "--type", "full", "--detach");
        Assert.True(started.ExitCode == 0, started.ToString());
        Assert.Contains(primary.Address, started.StandardOutput);

        // Through another agent (the standby that may back up): refused at once, naming the running backup and its agent.
        var second = await CliAsync("--agent", all, "backup", "--type", "incr", "--from", "standby");
        output.WriteLine(second.ToString());
        Assert.Equal(1, second.ExitCode);
        Assert.Contains("repo1 is being backed up by another agent of this cluster: pg-0 runs full backup to repo1", second.StandardError);

        // The lease shows in status while the backup runs: the holder's own (current), another agent's reading of the
        // repository (status --refresh reads it now; the refresh loop every interval), and the cluster view, once.
        var operations = await primary.Client.ListOperationsAsync(new ListOperationsRequest());
        var held = Assert.Single((await primary.Client.GetStatusAsync(new GetStatusRequest())).BackupLeases);
        Assert.True(held.HeldHere);
        Assert.Equal((1, "pg-0", "full backup to repo1", operations.Operations[0].Id), (held.Repo, held.Holder, held.Operation, held.OperationId));
        Assert.True(held.Expires.ToDateTimeOffset() > DateTimeOffset.UtcNow && held.Since.ToDateTimeOffset() <= DateTimeOffset.UtcNow, held.ToString());
        var seen = Assert.Single((await source.Client.GetStatusAsync(new GetStatusRequest { Refresh = true })).BackupLeases);
        Assert.False(seen.HeldHere);
        Assert.Equal((held.Repo, held.Holder, held.Operation, held.OperationId, held.Since), (seen.Repo, seen.Holder, seen.Operation, seen.OperationId, seen.Since));
        var view = await CliAsync("--agent", all, "status");
        output.WriteLine(view.StandardOutput);
        Assert.Single(view.StandardOutput.Split('\n'), l => l.StartsWith(
            $"backup lease repo1: pg-0 runs full backup to repo1 (operation {held.OperationId}), since {held.Since.ToDateTimeOffset():yyyy-MM-dd HH:mm:ss} UTC", StringComparison.Ordinal));
        var viewJson = JsonNode.Parse((await CliAsync("--agent", all, "--json", "status")).StandardOutput)!;
        var jsonLease = Assert.Single(viewJson["summary"]!["backupLeases"]!.AsArray())!;
        Assert.Equal(("pg-0", "full backup to repo1", true), ((string?)jsonLease["holder"], (string?)jsonLease["operation"], (bool?)jsonLease["heldHere"]));
        Assert.NotNull((string?)jsonLease["expires"]);

        // The first one goes on to the end, and its lease goes with it (also from the other agent's next reading).
        var done = await primary.Client.WaitAsync(operations.Operations[0], agent: primary);
        Assert.True(done.State == OperationState.Succeeded, done.ToString());
        var lease = Path.Combine(primary.RepositoryPath, "backrest-agent", ReplicationCluster.Stanza, "backup.lease");
        Assert.False(File.Exists(lease), "the lease outlived the backup");
        Assert.Empty((await primary.Client.GetStatusAsync(new GetStatusRequest())).BackupLeases);
        Assert.Empty((await source.Client.GetStatusAsync(new GetStatusRequest { Refresh = true })).BackupLeases);

        // From the standby, without SSH: followed to the end by backrestctl; then rows added on the primary.
        var fromStandby = await CliAsync("--agent", all, "backup", "--type", "full", "--from", "standby");
        output.WriteLine(fromStandby.ToString());
        Assert.True(fromStandby.ExitCode == 0, fromStandby.ToString() + "\n--- pg-1 agent log\n" + source.LogTail(40));
        Assert.Contains(source.Address, fromStandby.StandardOutput);
        // pgBackRest's own log: the backup ran with backup-standby (the standby replayed to the primary's start point).
        Assert.Contains("wait for replay on the standby", File.ReadAllText(cluster.Replicas[0].Directory.Combine($"log/{ReplicationCluster.Stanza}-backup.log")));
        await cluster.Primary.Postgres.ExecuteAsync("insert into t select g from generate_series(1, 5000) g");
        var label = (await source.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Last().Label;
        Assert.NotEqual(done.Backup.Backup.Label, label);

        var copyDirectory = cluster.Replicas[0].Directory.Combine("copy");
        var copyPort = FreePort.Next();
        var restore = await CliAsync("--agent", all, "restore", "--member", "pg-1", "--data-directory", copyDirectory, "--set", label,
            "--target-type", "immediate", "--target-action", "promote", "--port", copyPort.ToString(System.Globalization.CultureInfo.InvariantCulture), "--wait");
        Assert.True(restore.ExitCode == 0, restore.ToString());
        await using (var copy = PostgresCluster.FromDataDirectory(cluster.Replicas[0].Directory, copyDirectory, copyPort))
        {
            await copy.StartAsync();
            await copy.WaitForRecoveryEndAsync(TimeSpan.FromSeconds(60));
            Assert.Equal(Rows, await copy.ScalarAsync<long>("select count(*) from t"));
            await copy.StopAsync(ShutdownMode.Immediate);
        }

        // Split brain: pg-2 is promoted while pg-0 still runs. Both agents see a primary and are told to back up at once.
        var promoted = cluster.Replicas[1];
        await promoted.Postgres.ExecuteAsync("select pg_promote()");
        await promoted.Postgres.WaitForRecoveryEndAsync(TimeSpan.FromSeconds(30));
        // pg_control takes the new timeline only at the next checkpoint, and before it pgBackRest refuses a backup (58): the
        // agent runs that checkpoint itself, so nobody here does.
        var attempts = await Task.WhenAll(new[] { primary, promoted.Agent }.Select(async agent =>
        {
            try
            {
                return (agent, operation: await agent.Client.StartBackupAsync(new StartBackupRequest { Type = "incr" }), error: (RpcException?)null);
            }
            catch (RpcException ex)
            {
                return (agent, operation: (Operation?)null, error: ex);
            }
        }));
        var winner = Assert.Single(attempts, a => a.operation is not null);
        var loser = Assert.Single(attempts, a => a.error is not null);
        output.WriteLine($"winner {winner.agent.Address}, refused: {loser.error!.Status.Detail}");
        Assert.Equal(StatusCode.FailedPrecondition, loser.error.StatusCode);
        Assert.Contains($"{(winner.agent == primary ? "pg-0" : "pg-2")} runs incr backup to repo1", loser.error.Status.Detail);
        var winnerDone = await winner.agent.Client.WaitAsync(winner.operation!, agent: winner.agent);
        Assert.True(winnerDone.State == OperationState.Succeeded, winnerDone.ToString());

        // Whichever won, the promoted one backs up now (again, if it won): its agent checkpointed on the new timeline.
        var fromPromoted = await promoted.Agent.Client.StartBackupAsync(new StartBackupRequest { Type = "incr" });
        var promotedDone = await promoted.Agent.Client.WaitAsync(fromPromoted, agent: promoted.Agent);
        Assert.True(promotedDone.State == OperationState.Succeeded, promotedDone.ToString() + "\n" + promoted.Agent.LogTail(30));
        Assert.Contains("Ran CHECKPOINT before the backup: this PostgreSQL was promoted (WAL timeline 2, last checkpoint on 1)", promoted.Agent.LogTail(400));
    }

    [Fact]
    public async Task Status_ClusterNameWithTls_CertificateCheckedAgainstTheName_WithoutCaClearError()
    {
        using var pki = TestDirectory.Create();
        var authority = new TestAuthority(pki.Path, "agents-ca");
        var (certificate, key) = authority.IssueServer("agent"); // names localhost and 127.0.0.1
        var tls = new Dictionary<string, string?>
        {
            ["Agent__Tls__CertificateFile"] = certificate,
            ["Agent__Tls__KeyFile"] = key,
        };
        await using var cluster = await ReplicationCluster.CreateAsync(replicas: 1, security: new ClientSecurity(authority.Certificate),
            perMember: member => member == "pg-0"
                // Dual-stack: whichever loopback addresses "localhost" resolves to here (127.0.0.1, ::1) reach pg-0.
                ? new Dictionary<string, string?>(tls) { ["Agent__Listen__Address"] = "::" }
                : tls);
        var port = cluster.Primary.Agent.Address.Split(':')[^1];
        var name = $"localhost:{port}";
        var standby = cluster.Replicas[0].Agent.Address;

        // --cluster NAME:PORT dials each address NAME resolves to and checks the certificate against NAME.
        var json = await CliAsync("--cluster", name, "--agent", standby, "--tls-ca", authority.CertificateFile, "--json", "status");
        Assert.True(json.ExitCode == 0, json.ToString());
        var document = JsonNode.Parse(json.StandardOutput)!;
        Assert.Equal(name, (string?)document["cluster"]);
        var rows = document["agents"]!.AsArray();
        Assert.All(rows, r => Assert.True((bool)r!["reachable"]!, r!.ToJsonString()));
        Assert.Equal("standby", (string?)rows[^1]!["role"]!["role"]);
        Assert.All(rows.SkipLast(1), r => Assert.Equal("primary", (string?)r!["role"]!["role"]));
        Assert.Equal(1, (int)document["summary"]!["standbys"]!);

        // Without the CA: each row says the TLS handshake failed and what to pass; plaintext names the TLS flags.
        var withoutCa = await CliAsync("--cluster", name, "--tls", "status");
        output.WriteLine(withoutCa.ToString());
        Assert.Equal(1, withoutCa.ExitCode);
        Assert.Contains("health: DEGRADED", withoutCa.StandardOutput);
        Assert.Contains($"{cluster.Primary.Agent.Address}: the TLS handshake failed", withoutCa.StandardOutput);
        Assert.Contains("Pass the CA that signed the agent's certificate with --tls-ca", withoutCa.StandardOutput);
        var plaintext = await CliAsync("--cluster", name, "status");
        Assert.Equal(1, plaintext.ExitCode);
        Assert.Contains("an agent with Agent:Tls set needs --tls or --tls-ca", plaintext.StandardOutput);

        // Another CA's certificate for the same name is refused the same way: the name alone does not make it trusted.
        var other = new TestAuthority(pki.Path, "other-ca");
        var wrongCa = await CliAsync("--cluster", name, "--tls-ca", other.CertificateFile, "status");
        Assert.Equal(1, wrongCa.ExitCode);
        Assert.Contains("the TLS handshake failed", wrongCa.StandardOutput);
    }
}
