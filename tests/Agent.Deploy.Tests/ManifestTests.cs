using System.Text.RegularExpressions;
using k8s.Models;

namespace Backrest.Agent.Deploy.Tests;

/// <summary>What a user relies on when applying deploy/kubernetes: the pod runs PostgreSQL with the agent beside it,
/// WAL flows through the shared socket, probes hit the agent, secrets stay in Secrets, every container is bounded.</summary>
public sealed partial class ManifestTests
{
    public static TheoryData<string> Kustomizations => new() { "base", "overlays/example" };

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Pod_RunsPostgresWithTheAgentAsNativeSidecar(string dir)
    {
        var m = RenderedManifests.Render(dir);

        Assert.Equal("Always", m.Agent.RestartPolicy);
        Assert.Null(m.Postgres.RestartPolicy);
        // The archive client is in place before the agent starts, and both before PostgreSQL (init containers run in order).
        var names = m.Pod.InitContainers.Select(c => c.Name).ToList();
        Assert.True(names.IndexOf("install-archive-client") < names.IndexOf("backrest-agent"), string.Join(", ", names));
        Assert.Equal(m.Agent.Image, Assert.Single(m.Pod.InitContainers, c => c.Name == "install-archive-client").Image);
    }

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Volumes_DataSocketAndSpoolAreSharedAtTheSettingsPaths(string dir)
    {
        var m = RenderedManifests.Render(dir);
        var settings = m.AgentSettings;

        // The agent reads the data directory at the same path as PostgreSQL (pgBackRest's pg1-path).
        var dataMount = RenderedManifests.MountPath(m.Agent, "data");
        Assert.NotNull(dataMount);
        Assert.Equal(dataMount, RenderedManifests.MountPath(m.Postgres, "data"));
        Assert.StartsWith(dataMount + "/", settings["Agent__Postgres__DataDirectory"]);
        Assert.Equal(settings["Agent__Postgres__DataDirectory"], EnvValue(m.Postgres, "PGDATA"));
        // Queued WAL survives a container restart: the spool is on the persistent data volume, outside PGDATA.
        Assert.StartsWith(dataMount + "/", settings["Agent__PgBackRest__SpoolPath"]);
        Assert.False(settings["Agent__PgBackRest__SpoolPath"].StartsWith(settings["Agent__Postgres__DataDirectory"] + "/", StringComparison.Ordinal));
        Assert.Contains(m.Single<V1StatefulSet>().Spec.VolumeClaimTemplates, t => t.Metadata.Name == "data");

        // The WAL socket and the archive client live in one volume both containers mount at the same path.
        var runMount = RenderedManifests.MountPath(m.Agent, "agent-run");
        Assert.NotNull(runMount);
        Assert.Equal(runMount, RenderedManifests.MountPath(m.Postgres, "agent-run"));
        Assert.StartsWith(runMount + "/", settings["Agent__Listen__ArchiveSocket"]);
        Assert.StartsWith(runMount + "/", settings["Agent__Postgres__ArchiveClientPath"]);
        var installer = Assert.Single(m.Pod.InitContainers, c => c.Name == "install-archive-client");
        Assert.Equal(runMount, RenderedManifests.MountPath(installer, "agent-run"));
        Assert.Equal(settings["Agent__Postgres__ArchiveClientPath"], installer.Command.Last());

        // The agent reaches PostgreSQL over its Unix socket.
        var socketMount = RenderedManifests.MountPath(m.Agent, "pg-socket");
        Assert.Equal(settings["Agent__Postgres__SocketDirectory"], socketMount);
        Assert.Equal(socketMount, RenderedManifests.MountPath(m.Postgres, "pg-socket"));

        // Every mounted volume exists in the pod or as a claim template.
        var declared = m.Pod.Volumes.Select(v => v.Name)
            .Concat(m.Single<V1StatefulSet>().Spec.VolumeClaimTemplates.Select(t => t.Metadata.Name)).ToHashSet();
        foreach (var mount in m.AllContainers.SelectMany(c => c.VolumeMounts ?? []))
        {
            Assert.Contains(mount.Name, declared);
        }
    }

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Postgres_ArchivesAndRestoresThroughTheClientInTheSharedVolume(string dir)
    {
        var m = RenderedManifests.Render(dir);
        var client = m.AgentSettings["Agent__Postgres__ArchiveClientPath"];
        var settings = PostgresSettings(m.Postgres);

        Assert.Equal("on", settings["archive_mode"]);
        Assert.Equal($"{client} push %p", settings["archive_command"]);
        Assert.Equal($"{client} get %f \"%p\"", settings["restore_command"]);
        // pgBackRest's backup and check refuse an archive_command without "pgbackrest" in it (error 68).
        Assert.Contains("pgbackrest", Path.GetFileName(client));
        Assert.Equal(m.AgentSettings["Agent__Listen__ArchiveSocket"], EnvValue(m.Postgres, "BACKREST_AGENT_SOCKET"));
    }

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Probes_PointAtTheAgentsHealthService(string dir)
    {
        var m = RenderedManifests.Render(dir);
        var grpcPort = int.Parse(m.AgentSettings["Agent__Listen__Port"]);
        Assert.Contains(m.Agent.Ports, p => p.Name == "agent-grpc" && p.ContainerPort == grpcPort);
        Assert.Contains(m.Agent.Ports, p => p.Name == "metrics" && p.ContainerPort == int.Parse(m.AgentSettings["Agent__Listen__MetricsPort"]));

        // The control port runs mutual TLS, which kubelet's gRPC probes cannot speak: HTTP health on the metrics port.
        foreach (var (probe, path) in new[] { (m.Agent.StartupProbe, "/healthz"), (m.Agent.LivenessProbe, "/healthz"), (m.Agent.ReadinessProbe, "/readyz") })
        {
            Assert.NotNull(probe);
            Assert.Equal(path, probe.HttpGet?.Path);
            Assert.Equal("metrics", probe.HttpGet?.Port.Value);
        }

        Assert.Equal("0.0.0.0", m.AgentSettings["Agent__Listen__Address"]);
        // Reachable from other pods, so the control port must not be cleartext (the agent refuses to start otherwise).
        Assert.True(m.AgentSettings.ContainsKey("Agent__Tls__CertificateFile") && m.AgentSettings.ContainsKey("Agent__Tls__KeyFile"));
        Assert.False(m.AgentSettings.TryGetValue("Agent__Tls__AllowPlaintext", out var plaintext) && plaintext == "true");
        Assert.NotNull(m.Postgres.ReadinessProbe);
    }

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Secrets_AreReferencedNeverInlined(string dir)
    {
        var m = RenderedManifests.Render(dir);

        // No Secret object ships with data: users create their Secrets (or let an operator/CSI driver do it).
        foreach (var secret in m.All<V1Secret>())
        {
            Assert.True((secret.Data?.Count ?? 0) == 0 && (secret.StringData?.Count ?? 0) == 0, $"Secret {secret.Metadata.Name} is inlined");
        }

        // A secret-looking setting is either a file path (a mounted Secret) or comes from a secretKeyRef.
        foreach (var (key, value) in m.AgentSettings)
        {
            if (SecretName().IsMatch(key) && !key.EndsWith("File", StringComparison.Ordinal))
            {
                Assert.Fail($"{key} carries a secret value in plain configuration ('{value[..Math.Min(4, value.Length)]}...'); use {key}File or a secretKeyRef");
            }
        }

        foreach (var container in m.AllContainers)
        {
            foreach (var variable in container.Env ?? [])
            {
                if (SecretName().IsMatch(variable.Name) && !variable.Name.EndsWith("File", StringComparison.Ordinal))
                {
                    Assert.True(variable.Value is null && variable.ValueFrom?.SecretKeyRef is not null,
                        $"{container.Name}: {variable.Name} must come from a secretKeyRef");
                }
            }
        }

        // Files named by *File settings are inside a mounted Secret volume of the agent.
        var secretMounts = m.Agent.VolumeMounts
            .Where(vm => m.Pod.Volumes.Any(v => v.Name == vm.Name && v.Secret is not null))
            .Select(vm => vm.MountPath).ToList();
        foreach (var (key, path) in m.AgentSettings.Where(s => SecretName().IsMatch(s.Key) && s.Key.EndsWith("File", StringComparison.Ordinal)))
        {
            Assert.True(secretMounts.Any(mount => path.StartsWith(mount + "/", StringComparison.Ordinal)),
                $"{key}={path} is not inside a mounted Secret ({string.Join(", ", secretMounts)})");
        }
    }

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void EveryContainer_HasCpuAndMemoryRequestsAndLimits(string dir)
    {
        var m = RenderedManifests.Render(dir);
        foreach (var container in m.AllContainers)
        {
            foreach (var resource in new[] { "cpu", "memory" })
            {
                Assert.True(container.Resources?.Requests?.ContainsKey(resource) == true, $"{container.Name}: no {resource} request");
                Assert.True(container.Resources?.Limits?.ContainsKey(resource) == true, $"{container.Name}: no {resource} limit");
            }

            Assert.False(container.SecurityContext?.AllowPrivilegeEscalation ?? true, $"{container.Name} may escalate privileges");
        }

        Assert.True(m.Pod.SecurityContext.RunAsNonRoot);
    }

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Network_DiscoveryMetricsAndPolicyCoverTheAgentPorts(string dir)
    {
        var m = RenderedManifests.Render(dir);
        var podLabels = m.Single<V1StatefulSet>().Spec.Template.Metadata.Labels;
        bool Selects(IDictionary<string, string> selector) => selector.All(s => podLabels.TryGetValue(s.Key, out var v) && v == s.Value);

        // Headless Service: one DNS record per pod for backrestctl --cluster, including pods not ready yet.
        var headless = Assert.Single(m.All<V1Service>(), s => s.Spec.ClusterIP == "None");
        Assert.Equal(headless.Metadata.Name, m.Single<V1StatefulSet>().Spec.ServiceName);
        Assert.True(Selects(headless.Spec.Selector));
        Assert.Contains(headless.Spec.Ports, p => p.Name == "agent-grpc");
        Assert.True(headless.Spec.PublishNotReadyAddresses);

        var monitor = m.Single<PodMonitor>();
        Assert.True(Selects(monitor.Spec.Selector.MatchLabels));
        Assert.Contains(monitor.Spec.PodMetricsEndpoints, e => e.Port == "metrics" && e.Path == "/metrics");

        // Only named peers reach the agent's ports.
        var policy = m.Single<V1NetworkPolicy>();
        Assert.True(Selects(policy.Spec.PodSelector.MatchLabels));
        foreach (var port in new[] { m.AgentSettings["Agent__Listen__Port"], m.AgentSettings["Agent__Listen__MetricsPort"] })
        {
            var rule = Assert.Single(policy.Spec.Ingress, r => r.Ports.Any(p => p.Port.Value == port));
            Assert.NotEmpty(rule.FromProperty);
        }

        var account = Assert.Single(m.All<V1ServiceAccount>(), a => a.Metadata.Name == m.Pod.ServiceAccountName);
        Assert.False(account.AutomountServiceAccountToken);
        Assert.False(m.Pod.AutomountServiceAccountToken);
    }

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Services_ReachTheSidecarsPortsByNumber(string dir)
    {
        var m = RenderedManifests.Render(dir);
        var agentPorts = m.Agent.Ports.ToList();
        var targeted = 0;
        foreach (var service in m.All<V1Service>().Where(s => s.Spec.Selector?.All(l => m.Single<V1StatefulSet>().Spec.Template.Metadata.Labels.TryGetValue(l.Key, out var v) && v == l.Value) == true))
        {
            foreach (var port in service.Spec.Ports)
            {
                // Before Kubernetes 1.32 a Service finds named ports in regular containers only (kubernetes#127958): a name
                // of the native sidecar's would leave the endpoints without a port.
                Assert.False(agentPorts.Any(p => p.Name == port.TargetPort.Value),
                    $"Service {service.Metadata.Name} targets the agent's port by name ({port.TargetPort.Value}): use its number");
                if (agentPorts.Any(p => p.ContainerPort.ToString() == port.TargetPort.Value))
                {
                    targeted++;
                }
            }
        }

        Assert.True(targeted >= 2, "no Service reaches the agent's gRPC and metrics ports");
    }

    private static string? EnvValue(V1Container container, string name) => container.Env?.FirstOrDefault(e => e.Name == name)?.Value;

    /// <summary>PostgreSQL's `-c name=value` arguments.</summary>
    private static Dictionary<string, string> PostgresSettings(V1Container postgres)
    {
        var settings = new Dictionary<string, string>();
        var args = postgres.Args.ToList();
        for (var i = 0; i + 1 < args.Count; i++)
        {
            if (args[i] == "-c")
            {
                var (name, value) = (args[i + 1][..args[i + 1].IndexOf('=')], args[i + 1][(args[i + 1].IndexOf('=') + 1)..]);
                settings[name] = value;
            }
        }

        return settings;
    }

    [GeneratedRegex("(Key|Secret|Password|Passphrase|Token|Sas)[A-Za-z]*$")]
    private static partial Regex SecretName();
}
