using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Backrest.Agent.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Backrest.Agent.IntegrationTests.Harness;

public sealed record AgentProcessOptions
{
    public required TestDirectory Directory { get; init; }

    public required string Stanza { get; init; }

    public required string DataDirectory { get; init; }

    public required string SocketDirectory { get; init; }

    public required int PostgresPort { get; init; }

    /// <summary>
    /// Extra configuration as environment variables ("Agent__PgBackRest__ProcessMax" = "1"); they override the
    /// harness's defaults, and a null value removes a default.
    /// </summary>
    public IReadOnlyDictionary<string, string?> Settings { get; init; } = new Dictionary<string, string?>();

    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How <see cref="AgentProcess.Client"/> connects (and the start-up wait probes): cleartext by default.</summary>
    public ClientSecurity ClientSecurity { get; init; } = new();

    /// <summary>Wires the agent to <paramref name="cluster"/>, in the cluster's directory.</summary>
    public static AgentProcessOptions For(PostgresCluster cluster, string stanza) => new()
    {
        Directory = cluster.Directory,
        Stanza = stanza,
        DataDirectory = cluster.DataDirectory,
        SocketDirectory = cluster.SocketDirectory,
        PostgresPort = cluster.Port,
    };
}

/// <summary>
/// The real agent (<see cref="HarnessPaths.Agent"/>: the NativeAOT binary, else the plain build) run as the postgres
/// user, configured through environment variables, its stdout and stderr in &lt;dir&gt;/agent.log. It is started with
/// <c>setpriv --reuid=postgres --regid=postgres --init-groups backrest-agent</c>: setpriv execs, so the process
/// held here IS the agent (runuser would fork, and killing runuser would orphan the agent).
/// It can be started again after <see cref="Kill"/> or <see cref="StopAsync"/>, on the same port and socket.
/// </summary>
public sealed class AgentProcess : IAsyncDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan ProbeDeadline = TimeSpan.FromSeconds(2);
    private readonly AgentProcessOptions _options;
    private Process? _process;
    private readonly ProcessLog _log;
    private bool _disposed;

    public AgentProcess(AgentProcessOptions options)
    {
        _options = options;
        Port = FreePort.Next();
        MetricsPort = FreePort.Next();
        ArchiveSocket = options.Directory.Combine("agent.sock");
        ConfigPath = options.Directory.Combine("agent/pgbackrest.conf");
        RepositoryPath = options.Directory.Combine("repo1");
        SpoolPath = options.Directory.Combine("spool");
        LogFile = options.Directory.Combine("agent.log");
        _log = new ProcessLog(LogFile);
        Channel = options.ClientSecurity.CreateChannel(Address);
        Client = new BackupAgent.BackupAgentClient(options.ClientSecurity.CreateInvoker(Channel));
        LeakGuard.Register(this, () => Kill());
    }

    public int Port { get; }

    /// <summary>Where the agent serves Prometheus /metrics.</summary>
    public int MetricsPort { get; }

    /// <summary>The control-plane endpoint, host:port (what backrestctl --agent takes).</summary>
    public string Address => $"127.0.0.1:{Port}";

    public string ArchiveSocket { get; }

    /// <summary>Where the agent renders pgbackrest.conf.</summary>
    public string ConfigPath { get; }

    /// <summary>repo1, a posix repository.</summary>
    public string RepositoryPath { get; }

    /// <summary>pgBackRest's spool-path (async archiving queues and acknowledgements).</summary>
    public string SpoolPath { get; }

    public string LogFile { get; }

    public string Stanza => _options.Stanza;

    public GrpcChannel Channel { get; }

    public BackupAgent.BackupAgentClient Client { get; }

    /// <summary>The agent's own PID; null before the first start.</summary>
    public int? ProcessId => _process?.Id;

    public bool HasExited => _process is null || _process.HasExited;

    /// <summary>The exit code of the last run, once it exited.</summary>
    public int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;

    /// <summary>The environment the agent gets (besides the inherited one); null values are removed.</summary>
    public IReadOnlyDictionary<string, string?> Environment
    {
        get
        {
            var directory = _options.Directory;
            var environment = new Dictionary<string, string?>
            {
                ["HOME"] = directory.Path,
                ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
                ["Agent__Stanza"] = _options.Stanza,
                ["Agent__Postgres__DataDirectory"] = _options.DataDirectory,
                ["Agent__Postgres__SocketDirectory"] = _options.SocketDirectory,
                ["Agent__Postgres__Port"] = _options.PostgresPort.ToString(CultureInfo.InvariantCulture),
                ["Agent__Postgres__User"] = OsCommand.PostgresUser,
                ["Agent__Postgres__ArchiveClientPath"] = HarnessPaths.ArchiveClient,
                ["Agent__PgBackRest__ConfigPath"] = ConfigPath,
                ["Agent__PgBackRest__LockPath"] = directory.Combine("lock"),
                ["Agent__PgBackRest__LogPath"] = directory.Combine("log"),
                ["Agent__PgBackRest__SpoolPath"] = SpoolPath,
                ["Agent__Repositories__0__Type"] = "posix",
                ["Agent__Repositories__0__Path"] = RepositoryPath,
                ["Agent__Listen__Address"] = "127.0.0.1",
                ["Agent__Listen__Port"] = Port.ToString(CultureInfo.InvariantCulture),
                ["Agent__Listen__MetricsPort"] = MetricsPort.ToString(CultureInfo.InvariantCulture),
                ["Agent__Listen__ArchiveSocket"] = ArchiveSocket,
            };
            foreach (var (key, value) in _options.Settings)
            {
                environment[key] = value;
            }

            return environment;
        }
    }

    /// <summary>Starts the agent and waits until BackupAgent.GetStatus answers.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!HasExited)
        {
            throw new InvalidOperationException($"The agent is already running (pid {_process!.Id}).");
        }

        var agent = HarnessPaths.Agent;
        var agentFile = agent.Arguments.FirstOrDefault() ?? agent.Program;
        if (!File.Exists(agentFile))
        {
            throw new FileNotFoundException($"The agent is not built ({HarnessPaths.Configuration}).", agentFile);
        }

        var directory = _options.Directory;
        foreach (var sub in new[] { "agent", "lock", "log", "spool", "repo1" })
        {
            directory.CreateSubdirectory(sub);
        }

        _process?.Dispose();
        var startInfo = new ProcessStartInfo("setpriv") { WorkingDirectory = directory.Path };
        foreach (var argument in HarnessPaths.AsPostgres(agent))
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach (var (key, value) in Environment)
        {
            if (value is null)
            {
                startInfo.Environment.Remove(key);
            }
            else
            {
                startInfo.Environment[key] = value;
            }
        }

        var process = _log.Start(startInfo, $"--- harness: starting agent {DateTime.UtcNow:O}");
        _process = process;

        await WaitUntilAnsweringAsync(process, cancellationToken);
    }

    /// <summary>SIGKILL, like a crash or an OOM kill; by default its children (pgbackrest) die too, as in a container.</summary>
    public void Kill(bool entireProcessTree = true)
    {
        try
        {
            if (_process is { HasExited: false } process)
            {
                process.Kill(entireProcessTree);
                process.WaitForExit(TimeSpan.FromSeconds(10));
            }
        }
        catch (InvalidOperationException)
        {
            // Exited meanwhile.
        }
    }

    /// <summary>SIGTERM, then waits for a graceful exit; returns the exit code (kills it and throws on timeout).</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        if (_process is not { } process)
        {
            throw new InvalidOperationException("The agent was never started.");
        }

        if (!process.HasExited)
        {
            Libc.Signal(process.Id, Libc.SigTerm);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(timeout ?? TimeSpan.FromSeconds(30));
            try
            {
                await process.WaitForExitAsync(wait.Token);
            }
            catch (OperationCanceledException)
            {
                Kill();
                cancellationToken.ThrowIfCancellationRequested();
                throw new TimeoutException(
                    $"The agent did not exit within {(timeout ?? TimeSpan.FromSeconds(30)).TotalSeconds:0} s of SIGTERM; killed.\n{LogTail()}");
            }
        }

        return process.ExitCode;
    }

    /// <summary>The last lines of agent.log.</summary>
    public string LogTail(int lines = 50) => TestDirectory.TailOf(LogFile, lines);

    /// <summary>A gRPC channel over the agent's Unix socket (the only listener serving WalArchive), as the archive client opens it.</summary>
    public GrpcChannel CreateArchiveSocketChannel()
    {
        var endPoint = new UnixDomainSocketEndPoint(ArchiveSocket);
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                UseProxy = false,
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(endPoint, cancellationToken);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            },
            DisposeHttpClient = true,
        });
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Kill();
        if (_process is { } process)
        {
            try
            {
                // Lets the output events drain before the log closes.
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (TimeoutException)
            {
                Console.Error.WriteLine($"{this}: output did not drain after the kill.");
            }

            process.Dispose();
        }

        Channel.Dispose();
        _log.Dispose();

        LeakGuard.Unregister(this);
    }

    public override string ToString() => $"agent {Address} (pid {ProcessId?.ToString(CultureInfo.InvariantCulture) ?? "-"})";

    private async Task WaitUntilAnsweringAsync(Process process, CancellationToken cancellationToken)
    {
        var stopwatch = Stopwatch.StartNew();
        Exception? last = null;
        while (stopwatch.Elapsed < _options.StartTimeout)
        {
            if (process.HasExited)
            {
                await process.WaitForExitAsync(cancellationToken);
                throw new InvalidOperationException(
                    $"The agent exited with code {process.ExitCode} before answering GetStatus.\n--- {LogFile} (tail)\n{LogTail()}");
            }

            try
            {
                await Client.GetStatusAsync(
                    new GetStatusRequest(), deadline: DateTime.UtcNow + ProbeDeadline, cancellationToken: cancellationToken);
                _log.Write($"--- harness: agent answered GetStatus after {stopwatch.Elapsed.TotalSeconds:0.00} s");
                return;
            }
            catch (RpcException ex) when (!cancellationToken.IsCancellationRequested)
            {
                last = ex;
            }

            await Task.Delay(PollInterval, cancellationToken);
        }

        Kill();
        throw new TimeoutException(
            $"The agent did not answer GetStatus within {_options.StartTimeout.TotalSeconds:0} s (last: {last?.Message}).\n--- {LogFile} (tail)\n{LogTail()}");
    }
}
