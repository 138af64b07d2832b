using Backrest.Agent.V1;

namespace Backrest.Agent.IntegrationTests.Harness;

public sealed record TestEnvironmentOptions
{
    public string Stanza { get; init; } = "test";

    /// <summary>Extra postgresql.conf lines.</summary>
    public IReadOnlyList<string> PostgresConfig { get; init; } = [];

    /// <summary>Extra initdb arguments, see <see cref="PostgresClusterOptions.InitDbArguments"/>.</summary>
    public IReadOnlyList<string> InitDbArguments { get; init; } = [];

    /// <summary>Extra agent configuration, see <see cref="AgentProcessOptions.Settings"/>.</summary>
    public IReadOnlyDictionary<string, string?> AgentSettings { get; init; } = new Dictionary<string, string?>();

    public bool StartPostgres { get; init; } = true;

    public bool StartAgent { get; init; } = true;

    /// <summary>How the test's client connects to the agent (TLS, client certificate, token).</summary>
    public ClientSecurity ClientSecurity { get; init; } = new();
}

/// <summary>
/// One isolated world for a test: a temp directory, a PostgreSQL cluster whose archive_command and
/// restore_command go through the archive client to the agent's socket, and the agent with a posix repo1.
/// Everything lives under <see cref="Directory"/>; disposing stops the agent and PostgreSQL and removes it.
/// </summary>
public sealed class TestEnvironment : IAsyncDisposable
{
    private bool _disposed;

    private TestEnvironment(TestDirectory directory, string stanza, PostgresCluster postgres, AgentProcess agent)
    {
        Directory = directory;
        Stanza = stanza;
        Postgres = postgres;
        Agent = agent;
    }

    public TestDirectory Directory { get; }

    public string Stanza { get; }

    public PostgresCluster Postgres { get; }

    public AgentProcess Agent { get; }

    public BackupAgent.BackupAgentClient Client => Agent.Client;

    public static async Task<TestEnvironment> CreateAsync(
        TestEnvironmentOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new TestEnvironmentOptions();
        var directory = TestDirectory.Create();
        PostgresCluster? postgres = null;
        AgentProcess? agent = null;
        try
        {
            var socket = directory.Combine("agent.sock");
            postgres = await PostgresCluster.CreateAsync(
                new PostgresClusterOptions { Directory = directory, ArchiveSocket = socket, ExtraConfig = options.PostgresConfig, InitDbArguments = options.InitDbArguments },
                cancellationToken);
            agent = new AgentProcess(AgentProcessOptions.For(postgres, options.Stanza) with
            {
                Settings = options.AgentSettings,
                ClientSecurity = options.ClientSecurity,
            });
            if (agent.ArchiveSocket != socket)
            {
                throw new InvalidOperationException($"The cluster archives to {socket}, the agent listens on {agent.ArchiveSocket}.");
            }

            if (options.StartPostgres)
            {
                await postgres.StartAsync(cancellationToken);
            }

            if (options.StartAgent)
            {
                await agent.StartAsync(cancellationToken);
            }

            return new TestEnvironment(directory, options.Stanza, postgres, agent);
        }
        catch
        {
            if (agent is not null)
            {
                await agent.DisposeAsync();
            }

            if (postgres is not null)
            {
                await postgres.DisposeAsync();
            }

            directory.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <c>pgbackrest --config=&lt;the agent's rendered conf&gt; --stanza=&lt;stanza&gt; args...</c> as postgres,
    /// bypassing the agent (for assertions). Does not throw on a non-zero exit code.
    /// </summary>
    public Task<CommandResult> PgBackRestAsync(params string[] args) =>
        OsCommand.RunAsPostgresAsync(
            HarnessPaths.PgBackRest, [$"--config={Agent.ConfigPath}", $"--stanza={Stanza}", .. args]);

    /// <summary><c>backrestctl --agent 127.0.0.1:&lt;port&gt; args...</c>. Does not throw on a non-zero exit code.</summary>
    public Task<CommandResult> CliAsync(params string[] args)
    {
        var (program, leading) = HarnessPaths.Cli;
        return OsCommand.RunAsync(program, [.. leading, "--agent", Agent.Address, .. args]);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
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

    public override string ToString() => $"test environment {Directory.Path} (stanza {Stanza}, {Agent})";
}
