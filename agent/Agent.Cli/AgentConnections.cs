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
    /// with several, the one whose status says primary is chosen, and anything else is an error rather than a guess.
    /// </summary>
    public async Task<AgentAddress> FindPrimaryAsync(Action<string> warn, CancellationToken cancellationToken)
    {
        if (Agents.Count == 1)
        {
            return Agents[0];
        }

        var replies = await CallEachAsync((client, options) => client.GetStatusAsync(new GetStatusRequest(), options), cancellationToken);
        var primaries = replies
            .Where(r => r.Reply?.Postgres is { Reachable: true, Role: "primary" })
            .Select(r => r.Agent)
            .ToList();
        if (primaries.Count == 1)
        {
            // Say so, since an agent that did not answer could be a second primary (split brain) the user should know of.
            foreach (var failed in replies.Where(r => r.Error is not null))
            {
                warn($"warning: {failed.Error!.Message}");
            }

            return primaries[0];
        }

        var roles = string.Join(", ", replies.Select(DescribeRole));
        throw primaries.Count == 0
            ? new CliException($"no agent reports a primary PostgreSQL: {roles}")
            : new CliException($"more than one agent reports a primary PostgreSQL: {roles}; pass only the one to use with --agent");
    }

    private static string DescribeRole(AgentReply<AgentStatus> reply) => reply switch
    {
        { Error: { } error } => $"{reply.Agent} unreachable or failing ({StatusCodeNames.Name(error.StatusCode)})",
        { Reply.Postgres: { Reachable: true } postgres } => $"{reply.Agent} {postgres.Role}",
        _ => $"{reply.Agent} PostgreSQL unreachable",
    };

    public void Dispose()
    {
        foreach (var channel in channels.Values)
        {
            channel.Dispose();
        }
    }
}

/// <summary>One agent's answer in a fan-out: either the reply or the error.</summary>
internal sealed record AgentReply<T>(AgentAddress Agent, T? Reply, AgentCallException? Error)
    where T : class;
