using k8s.Models;

namespace Backrest.Agent.Deploy.Tests;

/// <summary>
/// The manifests as a multi-pod cluster (README, "One cluster, many agents"): the agent accepts the settings they render,
/// the instance count matches the pods, a posix repository follows a failover, and a standby's backup reaches the
/// primary's pgBackRest TLS server through what the manifests open and mount.
/// </summary>
public sealed class ClusterManifestTests
{
    private const string Overlay = "overlays/example";

    [Theory]
    [MemberData(nameof(ManifestTests.Kustomizations), MemberType = typeof(ManifestTests))]
    public void Agent_AcceptsTheRenderedSettingsWithoutWarnings(string dir)
    {
        var m = RenderedManifests.Render(dir);

        var shown = AgentConfigShow.Run(m.AgentEnvironment);

        Assert.True(shown.ExitCode == 0, $"config show exited {shown.ExitCode}: {shown.Stderr}");
        // A key that names no setting is a warning: a misspelt Agent__ key in the ConfigMap would be ignored in silence.
        Assert.True(shown.Stderr.Trim().Length == 0, shown.Stderr);
        Assert.Equal(m.Single<V1StatefulSet>().Spec.Replicas ?? 1, (int)shown.Agent["Cluster"]!["Instances"]!);
        Assert.Equal(m.AgentSettings["Agent__Stanza"], (string?)shown.Agent["Stanza"]);
    }

    [Fact]
    public void Agent_RefusesTheOverlayWithItsPosixRepositoryNotShared()
    {
        var environment = new Dictionary<string, string>(RenderedManifests.Render(Overlay).AgentEnvironment);
        Assert.True(environment.Remove("Agent__Repositories__0__Shared"));

        var shown = AgentConfigShow.Run(environment);

        Assert.Equal(2, shown.ExitCode);
        Assert.Contains("Agent:Repositories:0:Shared must be true", shown.Stderr);
    }

    [Theory]
    [MemberData(nameof(ManifestTests.Kustomizations), MemberType = typeof(ManifestTests))]
    public void Repositories_PosixFollowsAFailoverWhenThereAreSeveralInstances(string dir)
    {
        var m = RenderedManifests.Render(dir);
        var settings = m.AgentSettings;
        var replicas = m.Single<V1StatefulSet>().Spec.Replicas ?? 1;
        Assert.Equal(replicas, settings.TryGetValue("Agent__Cluster__Instances", out var instances) ? int.Parse(instances) : 1);

        for (var i = 0; settings.ContainsKey($"Agent__Repositories__{i}__Type"); i++)
        {
            if (settings[$"Agent__Repositories__{i}__Type"] != "posix" || replicas == 1)
            {
                continue;
            }

            Assert.Equal("true", settings.GetValueOrDefault($"Agent__Repositories__{i}__Shared"));
            // One claim for every pod (a volumeClaimTemplate would give each pod its own directory), ReadWriteMany.
            var path = settings[$"Agent__Repositories__{i}__Path"];
            var volume = m.VolumeAt(m.Agent, path);
            Assert.True(volume?.PersistentVolumeClaim is not null, $"repo{i + 1} at {path} is not on a pod-level claim shared by every pod");
            var claim = Assert.Single(m.All<V1PersistentVolumeClaim>(), c => c.Metadata.Name == volume.PersistentVolumeClaim.ClaimName);
            Assert.Contains("ReadWriteMany", claim.Spec.AccessModes);
        }
    }

    [Fact]
    public void Disruptions_TakeOneInstanceAtATime()
    {
        var m = RenderedManifests.Render(Overlay);
        var podLabels = m.Single<V1StatefulSet>().Spec.Template.Metadata.Labels;
        var budget = m.Single<V1PodDisruptionBudget>();
        Assert.All(budget.Spec.Selector.MatchLabels, l => Assert.Equal(l.Value, podLabels[l.Key]));
        Assert.Equal("1", budget.Spec.MaxUnavailable?.Value);
    }

    [Fact]
    public void TlsServer_PortOpenToTheClusterOnly_FilesFromASecret_PrimaryReachedThroughItsService()
    {
        var m = RenderedManifests.Render(Overlay);
        var settings = m.AgentSettings;
        var serverPort = int.Parse(settings["Agent__Cluster__TlsServer__Port"]);
        Assert.Contains(m.Agent.Ports, p => p.Name == "pgbackrest-tls" && p.ContainerPort == serverPort);

        // Certificates and keys of both ends come from a mounted Secret whose mode pgBackRest accepts for a key file
        // owned by root (0640 or less: group read at most, nothing for others; pgBackRest follows the Secret's symlinks).
        foreach (var key in new[] { "TlsServer__CertificateFile", "TlsServer__KeyFile", "TlsServer__CaFile", "Primary__CertificateFile", "Primary__KeyFile", "Primary__CaFile" })
        {
            var path = settings["Agent__Cluster__" + key];
            var secret = m.VolumeAt(m.Agent, path)?.Secret;
            Assert.True(secret is not null, $"Agent__Cluster__{key}={path} is not in a mounted Secret");
            Assert.True(((secret.DefaultMode ?? 420) & 0b000_011_111) == 0, $"{secret.SecretName}: mode {Convert.ToString(secret.DefaultMode ?? 420, 8)} is refused for a key file");
        }

        // Only the cluster's own pods reach the TLS server.
        var podLabels = m.Single<V1StatefulSet>().Spec.Template.Metadata.Labels;
        var rule = Assert.Single(m.Single<V1NetworkPolicy>().Spec.Ingress, r => r.Ports.Any(p => p.Port.Value == serverPort.ToString()));
        var peer = Assert.Single(rule.FromProperty);
        Assert.Null(peer.NamespaceSelector);
        Assert.Null(peer.IpBlock);
        Assert.All(peer.PodSelector.MatchLabels, l => Assert.Equal(l.Value, podLabels[l.Key]));

        // Primary:Host is a Service in front of exactly one pod of this StatefulSet, on the TLS server's port.
        var host = settings["Agent__Cluster__Primary__Host"];
        var service = Assert.Single(m.All<V1Service>(), s => s.Metadata.Name == host.Split('.')[0]);
        var port = Assert.Single(service.Spec.Ports, p => p.Port == int.Parse(settings["Agent__Cluster__Primary__Port"]));
        Assert.Equal(serverPort.ToString(), port.TargetPort.Value);
        Assert.Equal($"{m.Single<V1StatefulSet>().Metadata.Name}-0", service.Spec.Selector["statefulset.kubernetes.io/pod-name"]);
        Assert.All(service.Spec.Selector.Where(s => s.Key != "statefulset.kubernetes.io/pod-name"), s => Assert.Equal(s.Value, podLabels[s.Key]));
    }

    [Fact]
    public void Standbys_AreClonedFromThePrimaryBeforePostgresStarts()
    {
        var m = RenderedManifests.Render(Overlay);
        var names = m.Pod.InitContainers.Select(c => c.Name).ToList();
        Assert.True(names.IndexOf("backrest-agent") < names.IndexOf("clone-standby"), string.Join(", ", names));

        var clone = m.Pod.InitContainers[names.IndexOf("clone-standby")];
        Assert.Equal(m.Postgres.Image, clone.Image);
        var script = string.Join(" ", clone.Command.Concat(clone.Args ?? []));
        Assert.Contains($"--host={m.AgentSettings["Agent__Cluster__Primary__Host"]}", script);
        Assert.Contains("--write-recovery-conf", script);
        Assert.Equal(RenderedManifests.MountPath(m.Postgres, "data"), RenderedManifests.MountPath(clone, "data"));
        Assert.Equal(m.AgentSettings["Agent__Postgres__DataDirectory"], clone.Env.Single(e => e.Name == "PGDATA").Value);
        Assert.NotNull(clone.Env.Single(e => e.Name == "PGPASSWORD").ValueFrom?.SecretKeyRef);
    }
}
