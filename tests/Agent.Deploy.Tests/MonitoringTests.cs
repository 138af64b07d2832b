using System.Text.Json;
using k8s.Models;
using YamlDotNet.Serialization;

namespace Backrest.Agent.Deploy.Tests;

/// <summary>
/// The alerts and the dashboard of deploy/kubernetes/components/monitoring as the example overlay renders them. Their
/// PromQL is checked by promtool (tests/prometheus/check-rules.sh) and their metric names against a running agent
/// (Agent.IntegrationTests PrometheusTests); here: what an operator relies on when installing them.
/// </summary>
public sealed class MonitoringTests
{
    private static readonly string[] PromisedAlerts =
    [
        "BackrestAgentDown", "BackrestFullBackupTooOld", "BackrestDiffBackupTooOld", "BackrestIncrBackupTooOld",
        "BackrestWalArchivingFailing", "BackrestWalBacklogGrowing", "BackrestRepositoryUnreachable", "BackrestRecoveryWindowShort",
    ];

    [Fact]
    public void PrometheusRule_HasEveryPromisedAlertWithSeverityAndWhatToDo()
    {
        var rules = RenderedManifests.Render("overlays/example").Single<PrometheusRule>().Spec.Groups.SelectMany(g => g.Rules).ToList();

        Assert.Empty(PromisedAlerts.Except(rules.Select(r => r.Alert)));
        Assert.All(rules, r =>
        {
            Assert.Contains(r.Labels["severity"], new[] { "critical", "warning" });
            Assert.False(string.IsNullOrWhiteSpace(r.Annotations["summary"]), r.Alert);
            Assert.False(string.IsNullOrWhiteSpace(r.Annotations["description"]), r.Alert);
        });
    }

    [Fact]
    public void PrometheusRule_EveryAlertIsUnitTestedFiringAndNotFiring()
    {
        var rules = RenderedManifests.Render("overlays/example").Single<PrometheusRule>().Spec.Groups.SelectMany(g => g.Rules);
        var tests = new DeserializerBuilder().Build().Deserialize<Dictionary<string, object>>(
            File.ReadAllText(Path.Combine(RenderedManifests.RepositoryRoot(), "tests", "prometheus", "rules.test.yaml")));
        var cases = ((List<object>)tests["tests"]).Cast<Dictionary<object, object>>()
            .SelectMany(group => ((List<object>)group["alert_rule_test"]).Cast<Dictionary<object, object>>())
            .Select(c => (Alert: (string)c["alertname"], Fires: c.TryGetValue("exp_alerts", out var alerts) && ((List<object>)alerts).Count > 0))
            .ToList();

        Assert.All(rules, r =>
        {
            Assert.True(cases.Contains((r.Alert, true)), $"{r.Alert} has no promtool case where it fires");
            Assert.True(cases.Contains((r.Alert, false)), $"{r.Alert} has no promtool case where it stays quiet");
        });
    }

    [Fact]
    public void Dashboard_IsAConfigMapGrafanaLoadsWithAQueryInEveryPanel()
    {
        var map = Assert.Single(RenderedManifests.Render("overlays/example").All<V1ConfigMap>(), m => m.Metadata.Name == "backrest-agent-dashboard");

        Assert.Equal("1", map.Metadata.Labels["grafana_dashboard"]);
        using var dashboard = JsonDocument.Parse(Assert.Single(map.Data).Value);
        var panels = dashboard.RootElement.GetProperty("panels").EnumerateArray().Where(p => p.GetProperty("type").GetString() != "row").ToList();
        Assert.True(panels.Count >= 10);
        Assert.All(panels, p =>
        {
            var targets = p.GetProperty("targets").EnumerateArray().ToList();
            Assert.NotEmpty(targets);
            Assert.All(targets, t => Assert.False(string.IsNullOrWhiteSpace(t.GetProperty("expr").GetString())));
            // The data source is the dashboard's variable, so it works in any Grafana.
            Assert.Equal("${datasource}", p.GetProperty("datasource").GetProperty("uid").GetString());
        });
    }
}
