using Backrest.Agent.Core.Configuration;
using Microsoft.Extensions.Hosting;

namespace Backrest.Agent.Core.Status;

/// <summary>Refreshes the status cache every Agent:Status:IntervalSeconds, from start-up on. A refresh never waits for
/// the previous one: a repository still being read or probed is skipped until it finishes. It also reads each
/// repository's backup lease (another agent's shows in status).</summary>
public sealed class StatusRefreshLoop(StatusCache cache, Cluster.BackupLease lease, AgentOptions options, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Status.IntervalSeconds), time);
        do
        {
            cache.StartRefresh(stoppingToken);
            lease.StartReading(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }
}
