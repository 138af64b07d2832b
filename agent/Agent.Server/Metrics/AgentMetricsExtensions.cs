using Prometheus;

namespace Backrest.Agent.Server.Metrics;

/// <summary>
/// The metrics feature's wiring. Every collector shares <see cref="AgentMetrics.Registry"/>; a new area of metrics is one
/// class taking <see cref="AgentMetrics"/> (as <see cref="BackupCatalogMetrics"/> does) plus one line in each list below.
/// </summary>
internal static class AgentMetricsExtensions
{
    public static IServiceCollection AddAgentMetrics(this IServiceCollection services)
    {
        services.AddSingleton<AgentMetrics>();
        services.AddSingleton<BackupCatalogMetrics>();
        services.AddSingleton<PgBackRestMetrics>();
        services.AddSingleton<GrpcRequestMetrics>();
        services.AddSingleton<RecoverabilityMetrics>();
        services.AddSingleton<PolicyMetrics>();
        return services;
    }

    /// <summary>Counts gRPC calls: placed before access control so that refused calls are counted too.</summary>
    public static WebApplication UseGrpcRequestMetrics(this WebApplication app)
    {
        app.Use(app.Services.GetRequiredService<GrpcRequestMetrics>().ObserveAsync);
        return app;
    }

    /// <summary>Serves /metrics on the metrics port only, after creating every collector (they register on construction).</summary>
    public static WebApplication MapAgentMetrics(this WebApplication app, int metricsPort)
    {
        var registry = app.Services.GetRequiredService<AgentMetrics>().Registry;
        app.Services.GetRequiredService<BackupCatalogMetrics>();
        app.Services.GetRequiredService<PgBackRestMetrics>();
        app.Services.GetRequiredService<RecoverabilityMetrics>();
        app.Services.GetRequiredService<PolicyMetrics>();
        app.MapMetrics("/metrics", registry).RequireHost($"*:{metricsPort}");
        return app;
    }
}
