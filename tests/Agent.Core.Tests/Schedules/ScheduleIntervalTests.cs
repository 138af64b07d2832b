using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Retention;
using Backrest.Agent.Core.Schedules;

namespace Backrest.Agent.Core.Tests.Schedules;

/// <summary>The promises alerts compare the catalog against: the longest gap of a schedule and retention's window.</summary>
public sealed class ScheduleIntervalTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 5, 6, 0, 0, TimeSpan.Zero);

    private static BackupSchedule Schedule(string? full = null, string? incr = null, string zone = "UTC") =>
        Assert.Single(BackupSchedule.All(new AgentOptions
        {
            Repositories = [new RepositoryOptions { Schedules = new ScheduleOptions { Full = full, Incr = incr, TimeZone = zone } }],
        }));

    [Fact]
    public void LongestInterval_WeeklyFull_OneWeek() =>
        Assert.Equal(TimeSpan.FromDays(7), Schedule(full: "0 1 * * 0").LongestInterval(Now));

    [Fact]
    public void LongestInterval_WeekdaysOnly_TheWeekendGap() =>
        Assert.Equal(TimeSpan.FromDays(3), Schedule(incr: "30 2 * * 1-5").LongestInterval(Now));

    [Fact]
    public void LongestInterval_DailyAcrossDaylightSavingEnd_TheLongerDay()
    {
        // Europe/Berlin falls back on 2027-10-31: that day has 25 hours.
        var from = new DateTimeOffset(2027, 10, 1, 0, 0, 0, TimeSpan.Zero);

        Assert.Equal(TimeSpan.FromHours(25), Schedule(full: "0 12 * * *", zone: "Europe/Berlin").LongestInterval(from));
    }

    [Theory]
    [InlineData(14, "time", null, 14 * 24.0)]
    [InlineData(4, "count", 7 * 24.0, 3 * 7 * 24.0)]
    [InlineData(4, "count", null, null)]
    [InlineData(null, "count", 24.0, null)]
    public void ExpectedWindow_FromRetentionAndTheFullSchedule(int? full, string type, double? fullIntervalHours, double? expectedHours)
    {
        var policy = new RetentionPolicy(1, full, type, null, null, null);

        var window = policy.ExpectedWindow(fullIntervalHours is { } h ? TimeSpan.FromHours(h) : null);

        Assert.Equal(expectedHours, window?.TotalHours);
    }
}
