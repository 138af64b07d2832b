using Backrest.Agent.V1;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;

namespace Backrest.Agent.Cli;

/// <summary>One gRPC channel per agent named on the command line, and the calls made through them.</summary>
internal sealed class AgentConnections : IDisposable
{
    private readonly Dictionary<AgentAddress, GrpcChannel> channels = [];
    private readonly Dictionary<AgentAddress, CallInvoker> invokers = [];
    private readonly TimeProvider time;

    public AgentConnections(IReadOnlyList<AgentAddress> agents, TimeSpan timeout, TimeProvider time, ConnectionSecurity? security = null)
    {
        Agents = agents;
        Timeout = timeout;
        this.time = time;
        security ??= ConnectionSecurity.None;
        var (ssl, token) = security.Load();
        foreach (var agent in agents)
        {
            // Creating a channel does not connect, so doing it up front costs nothing and keeps the map read-only later.
            channels[agent] = CreateChannel(agent, timeout, security.UsesTls, ssl);
            invokers[agent] = token is null
                ? channels[agent].CreateCallInvoker()
                : channels[agent].Intercept(metadata =>
                {
                    metadata.Add("authorization", "Bearer " + token);
                    return metadata;
                });
        }
    }

    public IReadOnlyList<AgentAddress> Agents { get; }

    /// <summary>The --cluster name:port the agents were found behind; null when they were listed with --agent.</summary>
    public string? Cluster { get; init; }

    public TimeSpan Timeout { get; }

    /// <summary>The one place where channels are made: cleartext HTTP/2, or TLS with the CA and client certificate given.</summary>
    internal static GrpcChannel CreateChannel(AgentAddress agent, TimeSpan connectTimeout, bool tls = false,
        System.Net.Security.SslClientAuthenticationOptions? ssl = null)
    {
        var handler = new SocketsHttpHandler
        {
            // Without it a silently dropped SYN hangs a --wait stream, which has no deadline, for minutes.
            ConnectTimeout = connectTimeout,
            // A backup may be watched for hours; pings notice a dead peer that never closes the connection.
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(30),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            EnableMultipleHttp2Connections = true,
            // HttpClient sends http:// requests through a proxy as HTTP/1.1, which gRPC cannot use; agents are
            // reached directly. Revisit with TLS, where a CONNECT tunnel would work.
            UseProxy = false,
        };
        if (ssl is not null)
        {
            handler.SslOptions = ssl;
        }

        if (tls && agent.ServerName is { } serverName)
        {
            // The channel dials the pod's address; the certificate is checked against the name the user gave.
            handler.SslOptions = new System.Net.Security.SslClientAuthenticationOptions
            {
                TargetHost = serverName,
                ClientCertificates = ssl?.ClientCertificates,
                RemoteCertificateValidationCallback = ssl?.RemoteCertificateValidationCallback,
            };
        }

        return GrpcChannel.ForAddress(agent.ToUri(tls ? Uri.UriSchemeHttps : Uri.UriSchemeHttp), new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
        });
    }

    public BackupAgent.BackupAgentClient Client(AgentAddress agent) => new(invokers[agent]);

    /// <summary>Commands that act on one database (restore, operation lookup by id) refuse a list of agents.</summary>
    public AgentAddress Single(string command)
    {
        if (Agents.Count != 1)
        {
            throw new CliException(
                $"{command} needs exactly one --agent; got {Agents.Count}: {string.Join(", ", Agents)}",
                ExitCodes.Usage);
        }

        return Agents[0];
    }

    public CallOptions UnaryOptions(CancellationToken cancellationToken) =>
        new(deadline: time.GetUtcNow().UtcDateTime + Timeout, cancellationToken: cancellationToken);

    /// <summary>Streams follow an operation until it ends, however long that takes: no deadline, only Ctrl+C.</summary>
    public static CallOptions StreamingOptions(CancellationToken cancellationToken) =>
        new(cancellationToken: cancellationToken);

    public async Task<T> CallAsync<T>(
        AgentAddress agent,
        Func<BackupAgent.BackupAgentClient, CallOptions, AsyncUnaryCall<T>> call,
        CancellationToken cancellationToken)
    {
        try
        {
            return await call(Client(agent), UnaryOptions(cancellationToken));
        }
        catch (RpcException ex)
        {
            throw Wrap(agent, ex, cancellationToken);
        }
    }

    /// <summary>Turns an RpcException into the CLI's error, or into cancellation when the user pressed Ctrl+C.</summary>
    public Exception Wrap(AgentAddress agent, RpcException ex, CancellationToken cancellationToken) =>
        ex.StatusCode == StatusCode.Cancelled && cancellationToken.IsCancellationRequested
            ? new OperationCanceledException(cancellationToken)
            : new AgentCallException(agent, ex, Timeout);

    /// <summary>Calls every agent at once; a failure is kept per agent so the others still report.</summary>
    public async Task<AgentReply<T>[]> CallEachAsync<T>(
        Func<BackupAgent.BackupAgentClient, CallOptions, AsyncUnaryCall<T>> call,
        CancellationToken cancellationToken)
        where T : class
    {
        var calls = Agents.Select(async agent =>
        {
            try
            {
                return new AgentReply<T>(agent, await CallAsync(agent, call, cancellationToken), null);
            }
            catch (AgentCallException ex)
            {
                return new AgentReply<T>(agent, null, ex);
            }
        });
        return await Task.WhenAll(calls);
    }

    /// <summary>
    /// Backups and stanza-create must run where PostgreSQL is the primary. With one agent the agent decides;
    /// with several, the one whose GetRole says primary is chosen, and anything else is an error rather than a guess.
    /// </summary>
    public Task<AgentAddress> FindPrimaryAsync(Action<string> warn, CancellationToken cancellationToken) =>
        FindBackupSourceAsync(BackupSource.Primary, warn, cancellationToken);

    /// <summary>
    /// Where a coordinated backup goes. primary: the one primary. standby: the standby whose agent is the configured
    /// backup source (Agent:Cluster:BackupFrom=standby), the least behind first. prefer-standby: that standby, else the primary.
    /// </summary>
    public async Task<AgentAddress> FindBackupSourceAsync(BackupSource from, Action<string> warn, CancellationToken cancellationToken)
    {
        if (Agents.Count == 1 && Cluster is null)
        {
            return Agents[0];
        }

        var members = await ClusterView.ReadAsync(this, roleOnly: true, cancellationToken);
        var primaries = members.Where(m => m.IsPrimary).ToList();
        var roles = string.Join(", ", members.Select(Describe));
        var primary = primaries.Count == 1 ? primaries[0] : null;
        if (from != BackupSource.Primary)
        {
            var standby = members
                .Where(m => m.IsStandby && m.Role!.BackupFrom == "standby")
                .OrderBy(m => ClusterView.LagBytes(m, primary) ?? long.MaxValue)
                .FirstOrDefault();
            if (standby is not null)
            {
                WarnUnreachable(members, warn);
                return standby.Agent;
            }

            if (from == BackupSource.Standby)
            {
                throw new CliException($"no standby's agent is a backup source (Agent:Cluster:BackupFrom=standby): {roles}; " +
                    "configure one, or back up from the primary (--from primary or prefer-standby)");
            }
        }

        if (primary is null)
        {
            throw primaries.Count == 0
                ? new CliException($"no agent reports a primary PostgreSQL: {roles}")
                : new CliException($"more than one agent reports a primary PostgreSQL: {roles}; pass only the one to use with --agent");
        }

        WarnUnreachable(members, warn);
        return primary.Agent;
    }

    // An agent that did not answer could be a second primary (split brain) the user should know of.
    private static void WarnUnreachable(IEnumerable<ClusterMember> members, Action<string> warn)
    {
        foreach (var failed in members.Where(m => m.Role is null))
        {
            warn($"warning: {failed.Error}");
        }
    }

    private static string Describe(ClusterMember member) => member switch
    {
        { Role: null } => $"{member.Agent} unreachable or failing",
        { Role.PostgresUp: true } => $"{member.Agent} ({member.Name}) {member.Role.Role}",
        _ => $"{member.Agent} ({member.Name}) PostgreSQL unreachable",
    };

    public void Dispose()
    {
        foreach (var channel in channels.Values)
        {
            channel.Dispose();
        }
    }
}

/// <summary>backup --from: where a coordinated backup may run.</summary>
internal enum BackupSource
{
    Primary,
    PreferStandby,
    Standby,
}

/// <summary>One agent's answer in a fan-out: either the reply or the error.</summary>
internal sealed record AgentReply<T>(AgentAddress Agent, T? Reply, AgentCallException? Error)
    where T : class;
