using Backrest.Agent.Core;
using Backrest.Agent.Core.Archive;
using Backrest.Agent.Core.Backups;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Drills;
using Backrest.Agent.Core.Continuity;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Postgres;
using Backrest.Agent.Core.Restore;
using Backrest.Agent.Core.Retention;
using Backrest.Agent.Core.Schedules;
using Backrest.Agent.Core.Status;
using Backrest.Agent.Core.Verify;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

public static class AgentCoreServiceCollectionExtensions
{
    /// <summary>Registers the agent's services for validated options and the runtime start-up resolved.</summary>
    public static IServiceCollection AddAgentCore(this IServiceCollection services, AgentOptions options, AgentRuntime runtime)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(options);
        services.TryAddSingleton(runtime);
        services.TryAddSingleton<IProcessRunner, ProcessRunner>();
        services.TryAddSingleton<PgBackRestConfigFile>();
        services.TryAddSingleton<PgBackRestClient>();
        services.TryAddSingleton<ArchiveContinuityScanner>();
        services.TryAddSingleton<StatusCache>();
        services.TryAddSingleton<WalVolumeForecast>();
        services.TryAddSingleton<WalArchiveSampler>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, WalArchiveSampler>(sp => sp.GetRequiredService<WalArchiveSampler>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, StatusRefreshLoop>());
        services.TryAddSingleton<PostgresClient>();
        services.TryAddSingleton<PostgresReadingCache>();
        services.TryAddSingleton<OperationDecisions>();
        services.TryAddSingleton<OperationRegistry>();
        // The registry is also a hosted service: stopping the host waits for (or stops) the running operation.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, OperationRegistry>(sp => sp.GetRequiredService<OperationRegistry>()));
        services.TryAddSingleton<Backrest.Agent.Core.Cluster.BackupLease>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, Backrest.Agent.Core.Cluster.TlsServerHost>());
        services.TryAddSingleton<BackupService>();
        services.TryAddSingleton<RetentionService>();
        services.TryAddSingleton<IScheduledBackups, ScheduledBackups>();
        services.TryAddSingleton<BackupScheduler>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, BackupScheduler>(sp => sp.GetRequiredService<BackupScheduler>()));
        services.TryAddSingleton<ArchiveService>();
        services.TryAddSingleton<RecoveryReachedWatcher>();
        services.TryAddSingleton<RestoreService>();
        services.TryAddSingleton<StanzaService>();
        services.TryAddSingleton<StatusService>();
        services.TryAddSingleton<VerifyService>();
        services.TryAddSingleton<DrillService>();
        return services;
    }

    /// <summary>The runner used before the container exists (start-up probing, one-shot commands).</summary>
    public static IProcessRunner CreateProcessRunner() => new ProcessRunner();
}
