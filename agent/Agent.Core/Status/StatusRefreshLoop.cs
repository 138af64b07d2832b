using Backrest.Agent.Core.Configuration;
using Microsoft.Extensions.Hosting;

namespace Backrest.Agent.Core.Status;

/// <summary>Refreshes the status cache every Agent:Status:IntervalSeconds, from start-up on. A refresh never waits for
/// the previous one: a repository still being read or probed is skipped until it finishes.</summary>
public sealed class StatusRefreshLoop(StatusCache cache, AgentOptions options, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.Status.IntervalSeconds), time);
        do
        {
            cache.StartRefresh(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }
}
