using System.Globalization;

namespace Backrest.Agent.IntegrationTests.Harness;

/// <summary>
/// One PostgreSQL cluster as Kubernetes runs it, on loopback: a primary with its agent (a <see cref="TestEnvironment"/>)
/// and streaming replicas made with pg_basebackup, each with its own agent, all sharing the primary's posix repository
/// (as a ReadWriteMany volume would be). Each agent has its own lock directory, as each pod has: pgBackRest's local
/// locks do not see each other. Dispose stops everything.
/// </summary>
public sealed class ReplicationCluster : IAsyncDisposable
{
    public const string Stanza = "cluster";

    private ReplicationCluster(TestEnvironment primary) => Primary = primary;

    public TestEnvironment Primary { get; }

    public List<Replica> Replicas { get; } = [];

    /// <summary>Every agent, primary first.</summary>
    public IEnumerable<AgentProcess> Agents => Replicas.Select(r => r.Agent).Prepend(Primary.Agent);

    /// <summary>The settings every agent of the cluster gets (and <paramref name="member"/>'s name).</summary>
    public static Dictionary<string, string?> ClusterSettings(int instances, string member, IReadOnlyDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Agent__Cluster__Instances"] = instances.ToString(CultureInfo.InvariantCulture),
            ["Agent__Cluster__Member"] = member,
            ["Agent__Repositories__0__Shared"] = "true",
            ["Agent__Status__IntervalSeconds"] = "2",
        };
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return settings;
    }

    /// <summary>The primary (stanza created, a table t of <paramref name="rows"/> rows) and <paramref name="replicas"/> streaming replicas.</summary>
    /// <param name="perMember">Extra settings of one member's agent (pg-0 is the primary, pg-1... the replicas).</param>
    /// <param name="onPrimary">Called with the primary's PostgreSQL before the replicas' settings are asked for.</param>
    /// <param name="security">How the harness's clients reach every agent (for agents that serve TLS).</param>
    public static async Task<ReplicationCluster> CreateAsync(int replicas, int rows = 1000,
        Func<string, IReadOnlyDictionary<string, string?>?>? perMember = null, Action<PostgresCluster>? onPrimary = null,
        ClientSecurity? security = null)
    {
        security ??= new ClientSecurity();
        var instances = replicas + 1;
        var primary = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            Stanza = Stanza,
            AgentSettings = ClusterSettings(instances, "pg-0", perMember?.Invoke("pg-0")),
            PostgresConfig = ["max_wal_senders = 10", "wal_keep_size = '256MB'"],
            ClientSecurity = security,
        });
        onPrimary?.Invoke(primary.Postgres);
        var cluster = new ReplicationCluster(primary);
        try
        {
            await primary.Client.CreateStanzaAsync(new V1.CreateStanzaRequest());
            await primary.Postgres.ExecuteAsync($"create table t as select g as id from generate_series(1, {rows}) g");
            for (var i = 1; i <= replicas; i++)
            {
                cluster.Replicas.Add(await Replica.StartAsync(primary, $"pg-{i}", ClusterSettings(instances, $"pg-{i}", perMember?.Invoke($"pg-{i}")), security));
            }

            await AgentTestExtensions.WaitUntilAsync(
                async () => await primary.Postgres.ScalarAsync<long>("select count(*) from pg_stat_replication where state = 'streaming'") == replicas,
                TimeSpan.FromSeconds(30),
                () => $"{replicas} replicas are not streaming");
            // As their agents report it too: GetRole answers from a PostgreSQL reading up to a second old.
            await AgentTestExtensions.WaitUntilAsync(
                async () => (await Task.WhenAll(cluster.Replicas.Select(r => r.Agent.Client.GetRoleAsync(new V1.GetRoleRequest()).ResponseAsync)))
                    .All(role => role.ReceiveLsn.Length > 0),
                TimeSpan.FromSeconds(30),
                () => "the replicas' agents do not report a streaming standby");
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var replica in Replicas)
        {
            await replica.DisposeAsync();
        }

        await Primary.DisposeAsync();
    }
}

/// <summary>A streaming replica of the primary in its own directory, with its own agent on the shared repository.</summary>
public sealed class Replica : IAsyncDisposable
{
    private Replica(TestDirectory directory, PostgresCluster postgres, AgentProcess agent)
    {
        Directory = directory;
        Postgres = postgres;
        Agent = agent;
    }

    public TestDirectory Directory { get; }

    public PostgresCluster Postgres { get; }

    public AgentProcess Agent { get; }

    public static async Task<Replica> StartAsync(TestEnvironment primary, string member, IReadOnlyDictionary<string, string?> settings,
        ClientSecurity? security = null)
    {
        var directory = TestDirectory.Create();
        var data = directory.Combine("data");
        (await OsCommand.RunAsPostgresAsync(
            HarnessPaths.PostgresTool("pg_basebackup"),
            ["-h", primary.Postgres.SocketDirectory, "-p", primary.Postgres.Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres",
             "-D", data, "-R", "-X", "stream", "-c", "fast"])).EnsureSuccess();
        // As in a pod, this instance archives and fetches WAL through its own agent (the copied conf names the primary's).
        var client = HarnessPaths.ArchiveClient;
        var socket = directory.Combine("agent.sock");
        await File.AppendAllLinesAsync(Path.Combine(data, "postgresql.conf"),
        [
            $"archive_command = '{client} --socket {socket} push %p'",
            $"restore_command = '{client} --socket {socket} get %f \"%p\"'",
        ]);
        var postgres = PostgresCluster.FromDataDirectory(directory, data);
        var agentSettings = new Dictionary<string, string?>(settings);
        // A posix repository is the shared volume: the primary's repository directory (an object store's path is given).
        agentSettings.TryAdd("Agent__Repositories__0__Path", primary.Agent.RepositoryPath);
        var agent = new AgentProcess(new AgentProcessOptions
        {
            Directory = directory,
            Stanza = primary.Stanza,
            DataDirectory = data,
            SocketDirectory = postgres.SocketDirectory,
            PostgresPort = postgres.Port,
            Settings = agentSettings,
            ClientSecurity = security ?? new ClientSecurity(),
        });
        if (agent.ArchiveSocket != socket)
        {
            throw new InvalidOperationException($"The replica archives to {socket}, its agent listens on {agent.ArchiveSocket}.");
        }

        var replica = new Replica(directory, postgres, agent);
        try
        {
            await postgres.StartAsync();
            await agent.StartAsync();
            return replica;
        }
        catch
        {
            await replica.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Agent.DisposeAsync();
        }
        finally
        {
            await Postgres.DisposeAsync();
            Directory.Dispose();
        }
    }
}
