using Backrest.Agent.Core.Configuration;
using Cronos;

namespace Backrest.Agent.Core.Schedules;

/// <summary>
/// One configured schedule: a backup type (full, diff, incr), "verify" or "drill" for a repository, a cron expression and the
/// time zone it is read in.
/// </summary>
public sealed record BackupSchedule(int Repo, string Type, string Cron, CronExpression Expression, TimeZoneInfo TimeZone)
{
    /// <summary>The next run strictly after <paramref name="after"/>; Cronos handles daylight saving (a skipped time runs
    /// at the first valid time after it, a repeated one runs once).</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset after) =>
        Expression.GetNextOccurrence(after.UtcDateTime, TimeZone, inclusive: false) is { } next ? new DateTimeOffset(next, TimeSpan.Zero) : null;

    /// <summary>The latest run in (<paramref name="from"/>, <paramref name="to"/>], if any.</summary>
    public DateTimeOffset? LastBetween(DateTimeOffset from, DateTimeOffset to) =>
        Expression.GetOccurrences(from.UtcDateTime, to.UtcDateTime, TimeZone, fromInclusive: false, toInclusive: true)
            .Select(d => (DateTimeOffset?)new DateTimeOffset(d, TimeSpan.Zero)).LastOrDefault();

    /// <summary>
    /// The longest time between two consecutive runs among the next <paramref name="runs"/> after <paramref name="from"/>:
    /// how old the newest backup of this type may be while the schedule is kept (weekday-only schedules: the weekend).
    /// </summary>
    public TimeSpan? LongestInterval(DateTimeOffset from, int runs = 100)
    {
        TimeSpan? longest = null;
        var previous = NextAfter(from);
        for (var i = 0; i < runs && previous is { } at; i++)
        {
            var next = NextAfter(at);
            if (next is { } n && (longest is null || n - at > longest))
            {
                longest = n - at;
            }

            previous = next;
        }

        return longest;
    }

    /// <summary>How the operation this schedule starts describes itself (the history is searched by it).</summary>
    public string Description => Type switch
    {
        VerifyType => Verify.VerifyService.Description(Repo),
        DrillType => Drills.DrillService.Description(Repo),
        _ => $"{Type} backup to repo{Repo}",
    };

    public bool IsVerify => Type == VerifyType;

    public bool IsDrill => Type == DrillType;

    /// <summary>The operation kind this schedule starts (its last run is found in the history by kind and description).</summary>
    public Operations.OperationKind Kind => Type switch
    {
        VerifyType => Operations.OperationKind.Verify,
        DrillType => Operations.OperationKind.Drill,
        _ => Operations.OperationKind.Backup,
    };

    public const string VerifyType = "verify";

    public const string DrillType = "drill";

    /// <summary>Every schedule of every repository; the options were validated at start-up.</summary>
    public static IReadOnlyList<BackupSchedule> All(AgentOptions options)
    {
        var schedules = new List<BackupSchedule>();
        for (var i = 0; i < options.Repositories.Count; i++)
        {
            var s = options.Repositories[i].Schedules;
            var zone = TimeZoneInfo.FindSystemTimeZoneById(s.TimeZone);
            foreach (var (type, cron) in Entries(s))
            {
                schedules.Add(new BackupSchedule(i + 1, type, cron, Parse(cron), zone));
            }
        }

        return schedules;
    }

    /// <summary>Adds an error naming the key for each unreadable expression or time zone.</summary>
    public static void Validate(List<string> errors, string key, ScheduleOptions schedules)
    {
        try
        {
            TimeZoneInfo.FindSystemTimeZoneById(schedules.TimeZone);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            errors.Add($"{key}:TimeZone '{schedules.TimeZone}' is not a known time zone (use an IANA id such as UTC or Europe/Berlin).");
        }

        foreach (var (type, cron) in Entries(schedules))
        {
            try
            {
                Parse(cron);
            }
            catch (CronFormatException ex)
            {
                errors.Add($"{key}:{char.ToUpperInvariant(type[0])}{type[1..]} '{cron}' is not a cron expression ({ex.Message}); " +
                    "use 5 fields (minute hour day month weekday, e.g. '0 1 * * 0') or 6 with seconds first.");
            }
        }
    }

    private static IEnumerable<(string Type, string Cron)> Entries(ScheduleOptions s)
    {
        foreach (var (type, cron) in new[] { ("full", s.Full), ("diff", s.Diff), ("incr", s.Incr), (VerifyType, s.Verify), (DrillType, s.Drill) })
        {
            if (!string.IsNullOrWhiteSpace(cron))
            {
                yield return (type, cron.Trim());
            }
        }
    }

    private static CronExpression Parse(string cron) =>
        CronExpression.Parse(cron, cron.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
}
