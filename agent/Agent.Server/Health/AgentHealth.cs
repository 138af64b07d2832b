using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Postgres;
using Backrest.Agent.Core.Status;
using Grpc.AspNetCore.HealthChecks;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Backrest.Agent.Server.Health;

/// <summary>
/// Liveness (the process serves) and readiness (start-up finished, PostgreSQL answers, the status cache is refreshed,
/// the stanza exists), over gRPC (grpc.health.v1, services "liveness" and "readiness"; "" is liveness) and over HTTP on
/// the metrics port (/healthz, /readyz), for probes that cannot speak gRPC over TLS.
/// The agent is a sidecar: its readiness is part of the PostgreSQL pod's, and an unready pod leaves the database's
/// Services. So readiness fails only when the agent itself cannot work (not started, PostgreSQL gone, its refresh
/// stuck). A stanza not created yet (a fresh cluster: the control plane creates it through this very agent) and a
/// repository whose info fails are Degraded: the pod stays Ready, /readyz names them, and metrics and alerts report them.
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
            .AddCheck<PostgresCheck>("postgres", tags: [Ready])
            .AddCheck<StatusCacheCheck>("status-cache", tags: [Ready])
            .AddCheck<StanzaCheck>("stanza", tags: [Ready]);
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
internal sealed class StartupGate(TimeProvider time)
{
    private volatile bool complete;

    public bool IsComplete => complete;

    /// <summary>When start-up finished (the status cache's freshness counts from here until a first read).</summary>
    public DateTimeOffset CompletedAt { get; private set; }

    public void Complete()
    {
        CompletedAt = time.GetUtcNow();
        complete = true;
    }
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

/// <summary>Unhealthy when some repository's info was not even tried for too long: the refresh is stuck.</summary>
internal sealed class StatusCacheCheck(StatusCache cache, AgentOptions options, StartupGate gate, TimeProvider time) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var snapshot = cache.Snapshot();
        var limit = StatusCache.FreshnessLimit(options.Status);
        var stale = snapshot.NotTriedWithin(limit, time.GetUtcNow(), gate.CompletedAt);
        if (stale.Count > 0)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"the status cache has not tried to read {Repos(stale)} for over {limit.TotalSeconds:0} s: its refresh is stuck; " +
                "see the agent's log, restart the agent if it persists"));
        }

        return Task.FromResult(snapshot.InfoError is { } error
            ? HealthCheckResult.Degraded($"{error}; check the repository (backrestctl status)")
            : HealthCheckResult.Healthy());
    }

    private static string Repos(IEnumerable<int> repos) => string.Join(", ", repos.Select(r => $"repo{r}"));
}

/// <summary>Degraded, not unhealthy, while the stanza is missing: it is created through this agent once it serves.</summary>
internal sealed class StanzaCheck(StatusCache cache, AgentOptions options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var missing = cache.Snapshot().StanzaMissingIn;
        return Task.FromResult(missing.Count == 0
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Degraded($"stanza '{options.Stanza}' does not exist in {string.Join(", ", missing.Select(r => $"repo{r}"))} yet: " +
                "create it (backrestctl stanza-create, or the CreateStanza call); backups and WAL archiving fail until then"));
    }
}
