using Backrest.Agent.IntegrationTests.Harness;
using Grpc.Health.V1;

namespace Backrest.Agent.IntegrationTests;

/// <summary>Liveness and readiness as Kubernetes probes see them: gRPC grpc.health.v1 and HTTP on the metrics port.</summary>
public sealed class HealthTests
{
    [Fact]
    public async Task Probes_ReadyWhilePostgresAnswers_NotReadyButLiveWhenItStops()
    {
        await using var env = await TestEnvironment.CreateAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{env.Agent.MetricsPort}") };
        var health = new Health.HealthClient(env.Agent.Channel);

        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync("/readyz")).StatusCode);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving,
            (await health.CheckAsync(new HealthCheckRequest { Service = "readiness" })).Status);

        await env.Postgres.StopAsync();

        var notReady = await http.GetAsync("/readyz");
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, notReady.StatusCode);
        Assert.Contains("postgres: Unhealthy - PostgreSQL is not reachable", await notReady.Content.ReadAsStringAsync());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing,
            (await health.CheckAsync(new HealthCheckRequest { Service = "readiness" })).Status);
        // Liveness stays up: restarting the agent would not bring PostgreSQL back.
        Assert.Equal(System.Net.HttpStatusCode.OK, (await http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving,
            (await health.CheckAsync(new HealthCheckRequest { Service = "liveness" })).Status);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
    }

    [Fact]
    public async Task Readiness_FreshClusterWithoutStanza_ReadyButDegradedNamingStanzaCreateUntilItExists()
    {
        await using var env = await TestEnvironment.CreateAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{env.Agent.MetricsPort}") };
        var health = new Health.HealthClient(env.Agent.Channel);

        // The pod must be Ready for the control plane to create the stanza through this agent: degraded, not unready.
        var (status, body) = await ReadyzUntilAsync(http, b => b.Contains("stanza: Degraded", StringComparison.Ordinal));
        Assert.Equal(System.Net.HttpStatusCode.OK, status);
        Assert.Contains("stanza 'test' does not exist in repo1 yet", body);
        Assert.Contains("backrestctl stanza-create", body);
        Assert.Contains("status-cache: Healthy", body);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving,
            (await health.CheckAsync(new HealthCheckRequest { Service = "readiness" })).Status);

        await env.Client.CreateStanzaAsync(new Backrest.Agent.V1.CreateStanzaRequest());

        (status, body) = await ReadyzUntilAsync(http, b => b.StartsWith("Healthy", StringComparison.Ordinal));
        Assert.Equal(System.Net.HttpStatusCode.OK, status);
        Assert.Contains("stanza: Healthy", body);
    }

    /// <summary>/readyz until its body satisfies the condition (the cache reads in the background), at most 30 s.</summary>
    private static async Task<(System.Net.HttpStatusCode, string)> ReadyzUntilAsync(HttpClient http, Func<string, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var response = await http.GetAsync("/readyz");
            var body = await response.Content.ReadAsStringAsync();
            if (condition(body) || DateTime.UtcNow > deadline)
            {
                return (response.StatusCode, body);
            }

            await Task.Delay(100);
        }
    }
}
