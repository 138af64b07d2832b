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
}
