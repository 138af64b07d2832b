using System.Threading.Channels;
using Backrest.Agent.Core.Backups;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.Schedules;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Backrest.Agent.Core.Tests.Schedules;

/// <summary>The scheduler on a fake clock: the test moves time to each moment the scheduler says it waits for; nothing sleeps.</summary>
public sealed class BackupSchedulerTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private readonly string _directory = Directory.CreateTempSubdirectory("scheduler-tests-").FullName;
    private readonly Channel<DateTimeOffset> _waits = Channel.CreateUnbounded<DateTimeOffset>();
    private DateTimeOffset? _pending;

    public void Dispose() => TempDirectories.Delete(_directory);

    /// <summary>Starts backups in a real registry; the work itself only records what ran.</summary>
    private sealed class Backups(OperationRegistry registry, FakeTimeProvider time) : IScheduledBackups
    {
        public bool Primary { get; set; } = true;

        public List<(string Type, DateTimeOffset At)> Started { get; } = [];

        public Task<bool> IsPrimaryAsync(CancellationToken cancellationToken) => Task.FromResult(Primary);

        public Task<OperationSnapshot> StartAsync(BackupSchedule schedule, CancellationToken cancellationToken)
        {
            lock (Started)
            {
                Started.Add((schedule.Type, time.GetUtcNow()));
            }

            return Task.FromResult(registry.Start(new OperationRequest(OperationKind.Backup, schedule.Description,
                (_, _) => Task.FromResult<OperationResult?>(new BackupOutcome(schedule.Type, schedule.Type, schedule.Repo, null)))
            {
                Trigger = OperationTrigger.Schedule, BackupType = schedule.Type, Repo = schedule.Repo,
            }, queueIfBusy: true));
        }
    }

    private (BackupScheduler Scheduler, Backups Backups, OperationRegistry Registry) Create(
        FakeTimeProvider time, ScheduleOptions schedules, int missedLimitMinutes = 60)
    {
        var options = new AgentOptions
        {
            PgBackRest = new PgBackRestOptions { SpoolPath = _directory },
            Repositories = [new RepositoryOptions { Type = "posix", Path = "/repo", Schedules = schedules }],
            Operations = new OperationsOptions { MissedScheduleLimitMinutes = missedLimitMinutes },
        };
        var registry = new OperationRegistry(options, new OperationDecisions(), time, NullLogger<OperationRegistry>.Instance);
        var backups = new Backups(registry, time);
        var scheduler = new BackupScheduler(options, backups, registry, time, NullLogger<BackupScheduler>.Instance);
        scheduler.Waiting += at => _waits.Writer.TryWrite(at);
        return (scheduler, backups, registry);
    }

    private async Task<DateTimeOffset> NextWaitAsync() =>
        await _waits.Reader.ReadAsync().AsTask().WaitAsync(Patience);

    /// <summary>Moves the clock to each wait the scheduler announces, until it waits past <paramref name="until"/>.</summary>
    private async Task RunUntilAsync(FakeTimeProvider time, DateTimeOffset until)
    {
        var at = _pending ?? await NextWaitAsync();
        while (at <= until)
        {
            time.SetUtcNow(at);
            at = await NextWaitAsync();
        }

        _pending = at; // announced, not reached: the scheduler still waits for it
    }

    [Fact]
    public async Task Schedule_AcrossDaylightSavingChanges_FiresOnceEachDayAtTheWallClockTime()
    {
        // 02:30 Europe/Berlin daily: on 29 March 2026 02:30 does not exist (clocks go 02:00 -> 03:00); on 25 October it
        // happens twice (03:00 -> 02:00). Cronos runs the skipped time at 03:00 and the repeated one once.
        Assert.Equal(
        [
            new DateTimeOffset(2026, 3, 28, 1, 30, 0, TimeSpan.Zero), // 02:30 CET
            new DateTimeOffset(2026, 3, 29, 1, 0, 0, TimeSpan.Zero), // 03:00 CEST: 02:30 was skipped
            new DateTimeOffset(2026, 3, 30, 0, 30, 0, TimeSpan.Zero), // 02:30 CEST
        ], await FiresBetweenAsync(new(2026, 3, 27, 12, 0, 0, TimeSpan.Zero), new(2026, 3, 30, 12, 0, 0, TimeSpan.Zero)));

        Assert.Equal(
        [
            new DateTimeOffset(2026, 10, 25, 0, 30, 0, TimeSpan.Zero), // the first 02:30 (CEST); not again an hour later
            new DateTimeOffset(2026, 10, 26, 1, 30, 0, TimeSpan.Zero), // 02:30 CET
        ], await FiresBetweenAsync(new(2026, 10, 24, 12, 0, 0, TimeSpan.Zero), new(2026, 10, 26, 12, 0, 0, TimeSpan.Zero)));
    }

    private async Task<List<DateTimeOffset>> FiresBetweenAsync(DateTimeOffset from, DateTimeOffset until)
    {
        _pending = null;
        var time = new FakeTimeProvider(from);
        var (scheduler, backups, registry) = Create(time, new ScheduleOptions { Incr = "30 2 * * *", TimeZone = "Europe/Berlin" });
        await scheduler.StartAsync(CancellationToken.None);
        await RunUntilAsync(time, until);
        await scheduler.StopAsync(CancellationToken.None);
        await registry.StopAsync(CancellationToken.None);
        return backups.Started.Select(s => s.At).ToList();
    }

    [Fact]
    public async Task Schedule_OnAStandby_SkipsAndCountsTheDecision()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 4, 0, 0, 0, TimeSpan.Zero));
        var (scheduler, backups, registry) = Create(time, new ScheduleOptions { Full = "0 1 * * *" });
        backups.Primary = false;
        await scheduler.StartAsync(CancellationToken.None);

        await RunUntilAsync(time, new DateTimeOffset(2026, 12, 4, 2, 0, 0, TimeSpan.Zero));
        backups.Primary = true; // after a failover this agent's PostgreSQL is the primary
        await RunUntilAsync(time, new DateTimeOffset(2026, 12, 5, 2, 0, 0, TimeSpan.Zero));
        await scheduler.StopAsync(CancellationToken.None);

        Assert.Equal([new DateTimeOffset(2026, 12, 5, 1, 0, 0, TimeSpan.Zero)], backups.Started.Select(s => s.At));
        await registry.StopAsync(CancellationToken.None);
        Assert.Equal(1, registry.Decisions.Snapshot()[("full", 1, OperationDecisions.SkippedStandby)]);
    }

    [Fact]
    public async Task Schedule_FullAndIncrAtTheSameTime_IncrQueuedBehindTheFullAndDropped()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 4, 0, 0, 0, TimeSpan.Zero));
        var (scheduler, backups, registry) = Create(time, new ScheduleOptions { Full = "0 1 * * *", Incr = "0 1 * * *" });
        await scheduler.StartAsync(CancellationToken.None);
        await RunUntilAsync(time, new DateTimeOffset(2026, 12, 4, 2, 0, 0, TimeSpan.Zero));
        await scheduler.StopAsync(CancellationToken.None);

        Assert.Equal(["full", "incr"], backups.Started.Select(s => s.Type));
        var history = registry.List(10);
        await registry.StopAsync(CancellationToken.None);
        var decisions = registry.Decisions.Snapshot();
        // The full ran first (a full is fired before an incr due at the same time); whether the incr waited or found the
        // lane free depends on how fast the full ended, but it never ran after the full covering it.
        Assert.Equal(1, decisions[("full", 1, OperationDecisions.Started)]);
        Assert.False(decisions.ContainsKey(("incr", 1, OperationDecisions.Refused)));
        Assert.All(history, o => Assert.Equal(OperationTrigger.Schedule, o.Trigger));
    }

    [Fact]
    public async Task CatchUp_MissedWithinLimit_RunsOnceAtStart()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 4, 1, 40, 0, TimeSpan.Zero));
        var (scheduler, backups, registry) = Create(time, new ScheduleOptions { Full = "0 1 * * *", Diff = "0 0 * * *" }, missedLimitMinutes: 60);
        await scheduler.StartAsync(CancellationToken.None);
        await NextWaitAsync(); // the loop waits for the next run: catch-up is done
        await scheduler.StopAsync(CancellationToken.None);
        await registry.StopAsync(CancellationToken.None);

        // The full (due 40 minutes ago) runs; the diff (due 100 minutes ago) is past the limit.
        Assert.Equal([("full", time.GetUtcNow())], backups.Started);
        Assert.Equal(1, registry.Decisions.Snapshot()[("full", 1, OperationDecisions.CaughtUp)]);

        // Started again a minute later: the history shows the full ran after it was due, so nothing runs twice.
        var (again, backupsAgain, registryAgain) = Create(time, new ScheduleOptions { Full = "0 1 * * *" });
        time.Advance(TimeSpan.FromMinutes(1));
        await again.StartAsync(CancellationToken.None);
        await NextWaitAsync();
        await again.StopAsync(CancellationToken.None);
        await registryAgain.StopAsync(CancellationToken.None);
        Assert.Empty(backupsAgain.Started);
    }

    [Fact]
    public void Validate_BadCronAndTimeZone_ErrorsNameTheKeys()
    {
        var errors = new List<string>();
        BackupSchedule.Validate(errors, "Agent:Repositories:0:Schedules",
            new ScheduleOptions { Full = "0 1 * *", Incr = "*/5 * * * * *", Diff = "61 * * * *", TimeZone = "Mars/Olympus" });

        Assert.Equal(3, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("Agent:Repositories:0:Schedules:TimeZone 'Mars/Olympus'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Repositories:0:Schedules:Full '0 1 * *'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Repositories:0:Schedules:Diff '61 * * * *'", StringComparison.Ordinal));
    }

    [Fact]
    public void All_VerifyKey_VerifyScheduleOfThatRepository()
    {
        var options = new AgentOptions
        {
            Repositories = [new RepositoryOptions { Type = "posix", Path = "/r1" }, new RepositoryOptions { Type = "posix", Path = "/r2", Schedules = new ScheduleOptions { Verify = "0 3 * * 0" } }],
        };
        var errors = new List<string>();
        BackupSchedule.Validate(errors, "Agent:Repositories:1:Schedules", new ScheduleOptions { Verify = "0 3 * *" });

        var schedule = Assert.Single(BackupSchedule.All(options));

        Assert.True(schedule.IsVerify);
        Assert.Equal((2, "verify", "verify of repo2"), (schedule.Repo, schedule.Type, schedule.Description));
        Assert.StartsWith("Agent:Repositories:1:Schedules:Verify '0 3 * *'", Assert.Single(errors));
    }
}
