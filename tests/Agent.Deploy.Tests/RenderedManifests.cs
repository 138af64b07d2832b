using System.Diagnostics;
using k8s;
using k8s.Models;

namespace Backrest.Agent.Deploy.Tests;

/// <summary>
/// The objects `kubectl kustomize deploy/kubernetes/&lt;dir&gt;` renders, loaded with KubernetesClient's typed models,
/// plus the lookups the tests need (the pod template, its containers, the agent's settings).
/// </summary>
public sealed class RenderedManifests
{
    private RenderedManifests(IReadOnlyList<object> objects) => Objects = objects;

    public IReadOnlyList<object> Objects { get; }

    public static RenderedManifests Render(string kustomizeDir)
    {
        var dir = Path.Combine(RepositoryRoot(), "deploy", "kubernetes", kustomizeDir);
        var kubectl = new ProcessStartInfo("kubectl") { RedirectStandardOutput = true, RedirectStandardError = true };
        kubectl.ArgumentList.Add("kustomize");
        kubectl.ArgumentList.Add(dir);
        using var process = Process.Start(kubectl)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"kubectl kustomize {dir} exited {process.ExitCode}: {stderr}");
        // Unknown kinds would fail here: every object must have a typed model (PodMonitor, PrometheusRule: ours, below).
        var objects = KubernetesYaml.LoadAllFromString(stdout.Result, new Dictionary<string, Type>
        {
            ["monitoring.coreos.com/v1/PodMonitor"] = typeof(PodMonitor),
            ["monitoring.coreos.com/v1/PrometheusRule"] = typeof(PrometheusRule),
        }, strict: true);
        return new RenderedManifests(objects);
    }

    public IEnumerable<T> All<T>() => Objects.OfType<T>();

    public T Single<T>() => Assert.Single(All<T>());

    public V1PodSpec Pod => Single<V1StatefulSet>().Spec.Template.Spec;

    public V1Container Agent => Assert.Single(Pod.InitContainers, c => c.Name == "backrest-agent");

    public V1Container Postgres => Assert.Single(Pod.Containers, c => c.Name == "postgres");

    public IEnumerable<V1Container> AllContainers => Pod.InitContainers.Concat(Pod.Containers);

    /// <summary>The agent's effective Agent__* settings: its ConfigMaps, then its own env (later wins, as in Kubernetes).</summary>
    public IReadOnlyDictionary<string, string> AgentSettings
    {
        get
        {
            var settings = new Dictionary<string, string>();
            foreach (var source in Agent.EnvFrom ?? [])
            {
                var map = Assert.Single(All<V1ConfigMap>(), m => m.Metadata.Name == source.ConfigMapRef.Name);
                foreach (var (key, value) in map.Data)
                {
                    settings[key] = value;
                }
            }

            foreach (var variable in Agent.Env ?? [])
            {
                if (variable.Value is not null)
                {
                    settings[variable.Name] = variable.Value;
                }
            }

            return settings;
        }
    }

    /// <summary>
    /// The agent container's Agent__* environment as Kubernetes would start it: <see cref="AgentSettings"/> plus each
    /// variable taken from a Secret, standing in as <see cref="AgentConfigShow.FromSecret"/>.
    /// </summary>
    public IReadOnlyDictionary<string, string> AgentEnvironment
    {
        get
        {
            var environment = new Dictionary<string, string>(AgentSettings);
            foreach (var variable in Agent.Env ?? [])
            {
                if (variable.ValueFrom?.SecretKeyRef is not null)
                {
                    environment[variable.Name] = AgentConfigShow.FromSecret;
                }
            }

            return environment;
        }
    }

    /// <summary>The pod volume a container mounts at a path (the longest mount that contains it), or null.</summary>
    public V1Volume? VolumeAt(V1Container container, string path)
    {
        var mount = (container.VolumeMounts ?? [])
            .Where(m => path == m.MountPath || path.StartsWith(m.MountPath.TrimEnd('/') + "/", StringComparison.Ordinal))
            .MaxBy(m => m.MountPath.Length);
        return mount is null ? null : Pod.Volumes.FirstOrDefault(v => v.Name == mount.Name);
    }

    /// <summary>Where a container mounts a pod volume, or null.</summary>
    public static string? MountPath(V1Container container, string volume) =>
        container.VolumeMounts?.FirstOrDefault(m => m.Name == volume)?.MountPath;

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Agent.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Agent.sln not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>Prometheus Operator's PodMonitor: only the fields the tests read.</summary>
public sealed class PodMonitor : IKubernetesObject<V1ObjectMeta>
{
    public string ApiVersion { get; set; } = "";
    public string Kind { get; set; } = "";
    public V1ObjectMeta Metadata { get; set; } = new();
    public PodMonitorSpec Spec { get; set; } = new();
}

public sealed class PodMonitorSpec
{
    public V1LabelSelector Selector { get; set; } = new();
    public List<PodMetricsEndpoint> PodMetricsEndpoints { get; set; } = [];
}

public sealed class PodMetricsEndpoint
{
    public string Port { get; set; } = "";
    public string? Path { get; set; }
    public string? Interval { get; set; }
}

/// <summary>Prometheus Operator's PrometheusRule: groups of alerting rules (no recording rules here).</summary>
public sealed class PrometheusRule : IKubernetesObject<V1ObjectMeta>
{
    public string ApiVersion { get; set; } = "";
    public string Kind { get; set; } = "";
    public V1ObjectMeta Metadata { get; set; } = new();
    public PrometheusRuleSpec Spec { get; set; } = new();
}

public sealed class PrometheusRuleSpec
{
    public List<RuleGroup> Groups { get; set; } = [];
}

public sealed class RuleGroup
{
    public string Name { get; set; } = "";
    public List<AlertingRule> Rules { get; set; } = [];
}

public sealed class AlertingRule
{
    public string Alert { get; set; } = "";
    public string Expr { get; set; } = "";
    public string? For { get; set; }
    public Dictionary<string, string> Labels { get; set; } = [];
    public Dictionary<string, string> Annotations { get; set; } = [];
}
