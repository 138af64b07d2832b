using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;

namespace Backrest.Agent.IntegrationTests;

/// <summary>Backup schedules (6-field cron, seconds first) run by the agent against a real PostgreSQL and pgBackRest.</summary>
public sealed class ScheduleTests
{
    /// <summary>A 6-field cron expression that fires once a day at <paramref name="at"/> (UTC).</summary>
    private static string DailyAt(DateTimeOffset at) => $"{at.Second} {at.Minute} {at.Hour} * * *";

    private static async Task<List<Operation>> WaitForScheduledAsync(TestEnvironment env, int count)
    {
        List<Operation> scheduled = [];
        await AgentTestExtensions.WaitUntilAsync(async () =>
        {
            var history = await env.Client.ListOperationsAsync(new ListOperationsRequest { Limit = 50 });
            scheduled = history.Operations.Where(o => o.Trigger == OperationTrigger.Schedule).Reverse().ToList();
            return scheduled.Count >= count && scheduled.All(o => o.State is not (OperationState.Running or OperationState.Queued));
        }, TimeSpan.FromMinutes(3), () => $"{count} scheduled operations ended; have: {string.Join(", ", scheduled.Select(o => $"{o.Description} {o.State}"))}\n{env.Agent.LogTail(30)}");
        return scheduled;
    }

    [Fact]
    public async Task Schedules_FullDiffIncrSecondsApart_RunInOrderWithoutLockErrors()
    {
        var t = DateTimeOffset.UtcNow.AddSeconds(25);
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?>
            {
                ["Agent__Repositories__0__Schedules__Full"] = DailyAt(t),
                ["Agent__Repositories__0__Schedules__Diff"] = DailyAt(t.AddSeconds(12)),
                ["Agent__Repositories__0__Schedules__Incr"] = DailyAt(t.AddSeconds(24)),
            },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        var before = await env.CliAsync("schedules");
        Assert.True(before.Succeeded, before.ToString());
        Assert.Contains(DailyAt(t), before.StandardOutput);

        var scheduled = await WaitForScheduledAsync(env, 3);

        Assert.Equal(["full backup to repo1", "diff backup to repo1", "incr backup to repo1"], scheduled.Select(o => o.Description));
        Assert.All(scheduled, o => Assert.True(o.State == OperationState.Succeeded, $"{o.Description}: {o.State} {o.Error}"));
        var backups = await env.Client.ListBackupsAsync(new ListBackupsRequest());
        Assert.Equal(["full", "diff", "incr"], backups.Backups.Select(b => b.Type));
        Assert.Equal(scheduled.Select(o => o.BackupLabel), backups.Backups.Select(b => b.Label));
        Assert.DoesNotContain("unable to acquire lock", File.ReadAllText(env.Agent.LogFile), StringComparison.Ordinal);

        var after = await env.Client.ListSchedulesAsync(new ListSchedulesRequest());
        Assert.All(after.Schedules, s => Assert.Equal(OperationState.Succeeded, s.Last.State));
        Assert.All(after.Schedules, s => Assert.True(s.NextRun.ToDateTimeOffset() > DateTimeOffset.UtcNow.AddHours(23)));
    }

    [Fact]
    public async Task Schedules_DiffFiresWhileIncrRuns_QueuedAndRunsAfter()
    {
        var t = DateTimeOffset.UtcNow.AddSeconds(25);
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?>
            {
                ["Agent__Repositories__0__Schedules__Full"] = DailyAt(t),
                ["Agent__Repositories__0__Schedules__Incr"] = DailyAt(t.AddSeconds(12)),
                // One second later the incr still runs (a backup waits for its WAL to be archived): the diff queues.
                ["Agent__Repositories__0__Schedules__Diff"] = DailyAt(t.AddSeconds(13)),
            },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());

        var scheduled = await WaitForScheduledAsync(env, 3);

        Assert.Equal(["full backup to repo1", "incr backup to repo1", "diff backup to repo1"], scheduled.Select(o => o.Description));
        Assert.All(scheduled, o => Assert.True(o.State == OperationState.Succeeded, $"{o.Description}: {o.State} {o.Error}"));
        var (incr, diff) = (scheduled[1], scheduled[2]);
        Assert.True(diff.Started.ToDateTimeOffset() >= incr.Finished.ToDateTimeOffset(), "the diff ran while the incr did");
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
        Assert.Contains("pgbackrest_backup_decisions_total{stanza=\"test\",repo=\"1\",kind=\"diff\",result=\"queued\"} 1", metrics);
        Assert.Equal(["full", "incr", "diff"], (await env.Client.ListBackupsAsync(new ListBackupsRequest())).Backups.Select(b => b.Type));
    }
}
