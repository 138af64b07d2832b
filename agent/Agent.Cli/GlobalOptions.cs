using System.CommandLine;

namespace Backrest.Agent.Cli;

/// <summary>
/// The options every command accepts. They are recursive so that they may stand before or after the
/// subcommand (<c>backrestctl --agent a status</c> and <c>backrestctl status --agent a</c>).
/// </summary>
internal sealed class GlobalOptions
{
    public const string AgentEnvironmentVariable = "BACKRESTCTL_AGENT";
    public const string ClusterEnvironmentVariable = "BACKRESTCTL_CLUSTER";
    public const string DefaultAgent = "127.0.0.1:7480";
    public const int DefaultTimeoutSeconds = 30;

    public GlobalOptions()
    {
        Agent = new Option<string[]>("--agent", "-a")
        {
            Description = "Agent address host:port (port defaults to " + AgentAddress.DefaultPort
                + "). Repeat it, or separate addresses with commas, to address several agents. Default: $"
                + AgentEnvironmentVariable + ", else " + DefaultAgent + ".",
            HelpName = "host:port",
            Recursive = true,
            AllowMultipleArgumentsPerToken = false,
            DefaultValueFactory = _ => [Environment.GetEnvironmentVariable(AgentEnvironmentVariable) is { Length: > 0 } fromEnvironment
                ? fromEnvironment
                : DefaultAgent],
        };
        Agent.Validators.Add(result =>
        {
            foreach (var token in result.Tokens)
            {
                foreach (var part in AgentAddress.SplitList(token.Value))
                {
                    if (!AgentAddress.TryParse(part, out _, out var error))
                    {
                        result.AddError(error);
                    }
                }
            }
        });

        Cluster = new Option<string?>("--cluster", "-c")
        {
            Description = "Every agent of a cluster: a name:port (a Kubernetes headless Service) whose A/AAAA records are the pods. "
                + "Replaces the default --agent; with --agent too, both sets are used. Default: $" + ClusterEnvironmentVariable + ".",
            HelpName = "name:port",
            Recursive = true,
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable(ClusterEnvironmentVariable) is { Length: > 0 } fromEnvironment
                ? fromEnvironment
                : null,
        };
        Cluster.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && !AgentAddress.TryParse(result.Tokens[0].Value, out _, out var error))
            {
                result.AddError(error.Replace("agent address", "cluster", StringComparison.Ordinal));
            }
        });

        Json = new Option<bool>("--json")
        {
            Description = "Print the agent's reply as JSON (protobuf JSON mapping): one document, an object keyed by agent when there are several.",
            Recursive = true,
        };

        Timeout = new Option<int>("--timeout")
        {
            Description = "Deadline in seconds for each request (not for --wait, which follows an operation until it ends).",
            HelpName = "seconds",
            Recursive = true,
            DefaultValueFactory = _ => DefaultTimeoutSeconds,
        };
        Timeout.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() <= 0)
            {
                result.AddError("--timeout must be a positive number of seconds.");
            }
        });
    }

    public Option<string[]> Agent { get; }

    public Option<string?> Cluster { get; }

    public Option<bool> Tls { get; } = EnvironmentFlag("--tls", "BACKRESTCTL_TLS",
        "Connect with TLS, trusting the system's CAs (implied by --tls-ca and --cert).");

    public Option<string?> TlsCa { get; } = EnvironmentPath("--tls-ca", "BACKRESTCTL_TLS_CA", "PEM file of the CA that signed the agents' certificates.");

    public Option<string?> Certificate { get; } = EnvironmentPath("--cert", "BACKRESTCTL_CERT", "PEM client certificate, for agents that require one (mutual TLS).");

    public Option<string?> Key { get; } = EnvironmentPath("--key", "BACKRESTCTL_KEY", "PEM private key of --cert.");

    public Option<string?> TokenFile { get; } = EnvironmentPath("--token-file", "BACKRESTCTL_TOKEN_FILE", "File holding the bearer token sent to the agents.");

    public IEnumerable<Option> SecurityOptions => [Tls, TlsCa, Certificate, Key, TokenFile];

    public ConnectionSecurity GetSecurity(ParseResult parseResult) => new(
        parseResult.GetValue(Tls), parseResult.GetValue(TlsCa), parseResult.GetValue(Certificate),
        parseResult.GetValue(Key), parseResult.GetValue(TokenFile));

    private static Option<string?> EnvironmentPath(string name, string variable, string description) => new(name)
    {
        Description = $"{description} Default: ${variable}.",
        HelpName = "file",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value ? value : null,
    };

    private static Option<bool> EnvironmentFlag(string name, string variable, string description) => new(name)
    {
        Description = $"{description} Default: ${variable}=1.",
        Recursive = true,
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(variable) is "1" or "true",
    };

    public Option<bool> Json { get; }

    public Option<int> Timeout { get; }

    /// <summary>
    /// The agents to call: --cluster's addresses (resolved now), then --agent's. A --cluster alone replaces --agent's
    /// default; the environment variables are not seen by the option validators, so they are checked here.
    /// </summary>
    public async Task<(IReadOnlyList<AgentAddress> Agents, string? Cluster)> GetAgentsAsync(
        ParseResult parseResult, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var cluster = parseResult.GetValue(Cluster);
        if (cluster is null)
        {
            return (GetAgents(parseResult), null);
        }

        if (!AgentAddress.TryParse(cluster, out var name, out var error))
        {
            throw new CliException(error + " (from --cluster or $" + ClusterEnvironmentVariable + ")", ExitCodes.Usage);
        }

        var agents = (await ClusterDiscovery.ResolveAsync(name, timeout, cancellationToken)).ToList();
        if (parseResult.GetResult(Agent) is { Implicit: false })
        {
            agents.AddRange(GetAgents(parseResult).Where(a => !agents.Contains(a)));
        }

        return (agents, name.ToString());
    }

    /// <summary>Reads and checks the agent list; the environment variable is not seen by the option validator.</summary>
    public IReadOnlyList<AgentAddress> GetAgents(ParseResult parseResult)
    {
        var agents = new List<AgentAddress>();
        foreach (var value in parseResult.GetValue(Agent) ?? [])
        {
            foreach (var part in AgentAddress.SplitList(value))
            {
                if (!AgentAddress.TryParse(part, out var address, out var error))
                {
                    throw new CliException(error + " (from --agent or $" + AgentEnvironmentVariable + ")", ExitCodes.Usage);
                }

                if (!agents.Contains(address))
                {
                    agents.Add(address);
                }
            }
        }

        if (agents.Count == 0)
        {
            throw new CliException("no agent address given (--agent or $" + AgentEnvironmentVariable + ")", ExitCodes.Usage);
        }

        return agents;
    }
}
