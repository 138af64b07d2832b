using Backrest.Agent.Core.Backups;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.Postgres;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core.Schedules;

/// <summary>What a schedule needs from the rest of the agent: is this PostgreSQL the primary, and start (or queue) a backup or a verify.</summary>
public interface IScheduledBackups
{
    Task<bool> IsPrimaryAsync(CancellationToken cancellationToken);

    Task<OperationSnapshot> StartAsync(BackupSchedule schedule, CancellationToken cancellationToken);
}

internal sealed class ScheduledBackups(BackupService backups, Verify.VerifyService verify, Drills.DrillService drills, PostgresClient postgres) : IScheduledBackups
{
    public async Task<bool> IsPrimaryAsync(CancellationToken cancellationToken) =>
        await postgres.GetStateAsync(cancellationToken).ConfigureAwait(false) is { Reachable: true, InRecovery: false };

    // A scheduled backup or verify never fails for a busy lane: it waits in the queue.
    public Task<OperationSnapshot> StartAsync(BackupSchedule schedule, CancellationToken cancellationToken) => schedule.Type switch
    {
        BackupSchedule.VerifyType => Task.FromResult(verify.Start(schedule.Repo, queueIfBusy: true, trigger: OperationTrigger.Schedule)),
        BackupSchedule.DrillType => drills.StartAsync(schedule.Repo, cancellationToken, queueIfBusy: true, trigger: OperationTrigger.Schedule),
        _ => backups.StartAsync(schedule.Type, schedule.Repo, cancellationToken, queueIfBusy: true, trigger: OperationTrigger.Schedule),
    };
}

/// <summary>A schedule, when it runs next, and how its last run ended (from the history).</summary>
public sealed record ScheduleStatus(BackupSchedule Schedule, DateTimeOffset? Next, OperationSnapshot? Last);

/// <summary>
/// Fires the configured backup schedules. Every agent of a cluster runs the same schedules, and each checks at fire time
/// whether its PostgreSQL is the primary, so after a failover the schedules fire on the new primary's agent. A backup
/// that fires while another operation runs waits in the registry's queue. At start-up, a schedule missed while the agent
/// was down runs once if it is overdue by less than Agent:Operations:MissedScheduleLimitMinutes.
/// </summary>
public sealed partial class BackupScheduler(
    AgentOptions options,
    IScheduledBackups backups,
    OperationRegistry operations,
    TimeProvider time,
    ILogger<BackupScheduler> logger) : BackgroundService
{
    private static readonly TimeSpan LongestWait = TimeSpan.FromHours(12); // Task.Delay caps near 49 days; wake and re-check
    private static readonly string[] TypeOrder = ["full", "diff", "incr", BackupSchedule.VerifyType, BackupSchedule.DrillType]; // a full first, so it covers the others; verify and drill read the newest

    private readonly IReadOnlyList<BackupSchedule> _schedules = BackupSchedule.All(options);

    /// <summary>Raised with the time the loop waits for, just before it waits (tests drive the fake clock by it).</summary>
    internal event Action<DateTimeOffset>? Waiting;

    public IReadOnlyList<BackupSchedule> Schedules => _schedules;

    public IReadOnlyList<ScheduleStatus> List()
    {
        var now = time.GetUtcNow();
        return _schedules.Select(s => new ScheduleStatus(s, s.NextAfter(now), LastRun(s)?.ToSnapshot())).ToList();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_schedules.Count == 0)
        {
            return;
        }

        foreach (var schedule in _schedules)
        {
            Log.Configured(logger, schedule.Description, schedule.Cron, schedule.TimeZone.Id, schedule.NextAfter(time.GetUtcNow()));
        }

        await CatchUpAsync(stoppingToken).ConfigureAwait(false);
        var now = time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            var upcoming = _schedules.Select(s => (Schedule: s, Next: s.NextAfter(now))).Where(x => x.Next is not null).ToList();
            if (upcoming.Count == 0)
            {
                return;
            }

            var at = upcoming.Min(x => x.Next!.Value);
            Waiting?.Invoke(at);
            while (time.GetUtcNow() < at)
            {
                var wait = at - time.GetUtcNow();
                await Task.Delay(wait < LongestWait ? wait : LongestWait, time, stoppingToken).ConfigureAwait(false);
            }

            foreach (var (schedule, _) in upcoming.Where(x => x.Next == at).OrderBy(x => Array.IndexOf(TypeOrder, x.Schedule.Type)))
            {
                await FireAsync(schedule, catchUp: false, stoppingToken).ConfigureAwait(false);
            }

            // A clock that jumped ahead (a suspended node) fires the missed run once, not every run in between.
            now = time.GetUtcNow() > at ? time.GetUtcNow() : at;
        }
    }

    private async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        var limit = TimeSpan.FromMinutes(options.Operations.MissedScheduleLimitMinutes);
        if (limit <= TimeSpan.Zero)
        {
            return;
        }

        var now = time.GetUtcNow();
        foreach (var schedule in _schedules.OrderBy(s => Array.IndexOf(TypeOrder, s.Type)))
        {
            if (schedule.LastBetween(now - limit, now) is { } missed && !(LastRun(schedule) is { } last && last.Started >= missed))
            {
                Log.CatchingUp(logger, schedule.Description, missed);
                await FireAsync(schedule, catchUp: true, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task FireAsync(BackupSchedule schedule, bool catchUp, CancellationToken cancellationToken)
    {
        try
        {
            if (!await backups.IsPrimaryAsync(cancellationToken).ConfigureAwait(false))
            {
                operations.Decisions.Count(schedule.Type, schedule.Repo, OperationDecisions.SkippedStandby);
                Log.SkippedNotPrimary(logger, schedule.Description);
                return;
            }

            var operation = await backups.StartAsync(schedule, cancellationToken).ConfigureAwait(false);
            if (catchUp)
            {
                operations.Decisions.Count(schedule.Type, schedule.Repo, OperationDecisions.CaughtUp);
            }

            Log.Fired(logger, schedule.Description, operation.Id, operation.State);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // A refused precondition (no stanza yet, PostgreSQL down) must not stop the schedules.
            Log.FireFailed(logger, schedule.Description, ex.Message);
        }
    }

    private OperationRecord? LastRun(BackupSchedule schedule) =>
        operations.History.List(operations.History.Capacity)
            .FirstOrDefault(r => r.Trigger == OperationTrigger.Schedule && r.Kind == schedule.Kind &&
                                 r.Description == schedule.Description);

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.ScheduleConfigured, EventName = nameof(LogEvents.ScheduleConfigured), Level = LogLevel.Information,
            Message = "Schedule: {Description} at '{Cron}' ({TimeZone}), next {Next:u}")]
        public static partial void Configured(ILogger logger, string description, string cron, string timeZone, DateTimeOffset? next);

        [LoggerMessage(EventId = LogEvents.ScheduleFired, EventName = nameof(LogEvents.ScheduleFired), Level = LogLevel.Information,
            Message = "Schedule fired: {Description} is operation {Id} ({State})")]
        public static partial void Fired(ILogger logger, string description, string id, OperationState state);

        [LoggerMessage(EventId = LogEvents.ScheduleSkippedNotPrimary, EventName = nameof(LogEvents.ScheduleSkippedNotPrimary), Level = LogLevel.Information,
            Message = "Schedule skipped: {Description}: this agent's PostgreSQL is not the primary (the primary's agent takes it)")]
        public static partial void SkippedNotPrimary(ILogger logger, string description);

        [LoggerMessage(EventId = LogEvents.ScheduleFireFailed, EventName = nameof(LogEvents.ScheduleFireFailed), Level = LogLevel.Warning,
            Message = "Schedule could not start {Description}: {Error}")]
        public static partial void FireFailed(ILogger logger, string description, string error);

        [LoggerMessage(EventId = LogEvents.ScheduleCatchingUp, EventName = nameof(LogEvents.ScheduleCatchingUp), Level = LogLevel.Information,
            Message = "Schedule missed while the agent was down: running {Description} once now (it was due at {Missed:u})")]
        public static partial void CatchingUp(ILogger logger, string description, DateTimeOffset missed);
    }
}
