using Backrest.Agent.Core.Postgres;
using Grpc.AspNetCore.HealthChecks;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Backrest.Agent.Server.Health;

/// <summary>
/// Liveness (the process serves) and readiness (start-up finished, PostgreSQL answers), over gRPC (grpc.health.v1,
/// services "liveness" and "readiness"; "" is liveness) and over HTTP on the metrics port (/healthz, /readyz), for
/// probes that cannot speak gRPC over TLS.
/// </summary>
internal static class AgentHealth
{
    private const string Live = "live";
    private const string Ready = "ready";

    public static void AddAgentHealth(this IServiceCollection services)
    {
        services.AddSingleton<StartupGate>();
        services.AddGrpcHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), tags: [Live])
            .AddCheck<StartupCheck>("startup", tags: [Ready])
            .AddCheck<PostgresCheck>("postgres", tags: [Ready]);
        services.Configure<GrpcHealthChecksOptions>(options =>
        {
            options.Services.Map("", result => result.Tags.Contains(Live));
            options.Services.Map("liveness", result => result.Tags.Contains(Live));
            options.Services.Map("readiness", result => result.Tags.Contains(Ready));
        });
    }

    public static void MapAgentHealth(this WebApplication app, int metricsPort)
    {
        app.MapGrpcHealthChecksService();
        app.MapHealthChecks("/healthz", new HealthCheckOptions { Predicate = check => check.Tags.Contains(Live) })
            .RequireHost($"*:{metricsPort}");
        app.MapHealthChecks("/readyz", new HealthCheckOptions { Predicate = check => check.Tags.Contains(Ready), ResponseWriter = WriteReasons })
            .RequireHost($"*:{metricsPort}");
    }

    /// <summary>"Unhealthy" alone tells a person nothing: name each failing check and why.</summary>
    private static Task WriteReasons(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        var lines = report.Entries.Select(e => $"{e.Key}: {e.Value.Status}{(e.Value.Description is { } d ? " - " + d : "")}");
        return context.Response.WriteAsync($"{report.Status}\n{string.Join('\n', lines)}\n");
    }
}

/// <summary>Set once start-up chores (orphan reaping) are done: the agent is not ready before.</summary>
internal sealed class StartupGate
{
    private volatile bool complete;

    public bool IsComplete => complete;

    public void Complete() => complete = true;
}

internal sealed class StartupCheck(StartupGate gate) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(gate.IsComplete ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy("start-up is not complete"));
}

internal sealed class PostgresCheck(PostgresClient postgres) : IHealthCheck
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            var state = await postgres.GetStateAsync(timeout.Token);
            return state.Reachable ? HealthCheckResult.Healthy() : HealthCheckResult.Unhealthy($"PostgreSQL is not reachable: {state.Error}");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"PostgreSQL did not answer within {Timeout.TotalSeconds:0} s");
        }
    }
}
