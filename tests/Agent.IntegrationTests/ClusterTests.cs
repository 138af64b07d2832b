using System.Text.Json.Nodes;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
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
    }
}
