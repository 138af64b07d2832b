using System.Diagnostics;
using System.Reflection;
using System.Text.Json.Nodes;

namespace Backrest.Agent.Deploy.Tests;

/// <summary>
/// The built agent's `backrest-agent config show` run with a given environment: the same contract (unknown keys, value
/// types) and validator that stop a real start-up with exit 2, without starting anything.
/// </summary>
public sealed record AgentConfigShow(int ExitCode, string Stdout, string Stderr)
{
    /// <summary>Stands in for each value Kubernetes takes from a Secret (secretKeyRef) when it starts the container.</summary>
    public const string FromSecret = "value-from-a-secret";

    public JsonNode Agent => JsonNode.Parse(Stdout)!["Agent"]!;

    public static AgentConfigShow Run(IReadOnlyDictionary<string, string> environment)
    {
        var configuration = typeof(AgentConfigShow).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration is { Length: > 0 } c ? c : "Debug";
        var dll = Path.Combine(RenderedManifests.RepositoryRoot(), "agent", "Agent.Server", "bin", configuration, "net10.0", "backrest-agent.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing: build agent/Agent.Server first");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { dll, "config", "show" })
        {
            start.ArgumentList.Add(argument);
        }

        // Only the given settings: none of this machine's own Agent__* variables.
        foreach (var inherited in start.Environment.Keys.Where(k => k.StartsWith("Agent__", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(inherited);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "config show did not finish in 60 s");
        return new AgentConfigShow(process.ExitCode, stdout.Result, stderr);
    }
}
