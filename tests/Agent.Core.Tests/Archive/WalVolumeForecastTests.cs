using Backrest.Agent.Core.Archive;
using Backrest.Agent.Core.Configuration;
using Microsoft.Extensions.Time.Testing;

namespace Backrest.Agent.Core.Tests.Archive;

public sealed class WalVolumeForecastTests : IDisposable
{
    private const long Segment = 16 * 1024 * 1024;
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("wal-volume-");
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 12, 4, 12, 0, 0, TimeSpan.Zero));

    public void Dispose() => _dir.Delete(recursive: true);

    private void AddReady(string name)
    {
        var wal = Path.Combine(_dir.FullName, "pg_wal");
        Directory.CreateDirectory(Path.Combine(wal, "archive_status"));
        using (var file = File.Create(Path.Combine(wal, name)))
        {
            file.SetLength(Segment); // sparse: the volume's free space does not move under the test
        }

        File.WriteAllText(Path.Combine(wal, "archive_status", name + ".ready"), "");
    }

    [Fact]
    public void Current_BacklogGrowing_HoursUntilFullFromGrowthAndFreeBytes()
    {
        var forecast = new WalVolumeForecast(new AgentOptions { Postgres = new PostgresOptions { DataDirectory = _dir.FullName } });
        AddReady("000000010000000000000001");
        forecast.Sample(_time.GetUtcNow(), ReadyBacklog.Read(_dir.FullName, _time.GetUtcNow()));
        Assert.Null(forecast.Current().HoursUntilFull); // one sample: unknown, not 0

        _time.Advance(TimeSpan.FromMinutes(5));
        AddReady("000000010000000000000002");
        AddReady("000000010000000000000003");
        forecast.Sample(_time.GetUtcNow(), ReadyBacklog.Read(_dir.FullName, _time.GetUtcNow()));

        var outlook = forecast.Current();
        var growthPerHour = 2.0 * Segment * 12;
        Assert.NotNull(outlook.FreeBytes);
        Assert.Equal(outlook.FreeBytes!.Value / growthPerHour, outlook.HoursUntilFull!.Value, 3);
    }

    [Fact]
    public void Current_BacklogShrinking_NoForecast()
    {
        var forecast = new WalVolumeForecast(new AgentOptions { Postgres = new PostgresOptions { DataDirectory = _dir.FullName } });
        AddReady("000000010000000000000001");
        forecast.Sample(_time.GetUtcNow(), ReadyBacklog.Read(_dir.FullName, _time.GetUtcNow()));
        _time.Advance(TimeSpan.FromMinutes(5));
        File.Delete(Path.Combine(_dir.FullName, "pg_wal", "archive_status", "000000010000000000000001.ready"));
        forecast.Sample(_time.GetUtcNow(), ReadyBacklog.Read(_dir.FullName, _time.GetUtcNow()));
        Assert.Null(forecast.Current().HoursUntilFull);
    }

    [Fact]
    public void ReadyBacklog_ReadyAndDoneFiles_CountedApart()
    {
        AddReady("000000010000000000000001");
        AddReady("000000010000000000000002");
        var status = Path.Combine(_dir.FullName, "pg_wal", "archive_status");
        File.WriteAllText(Path.Combine(status, "000000010000000000000000.done"), "");
        File.WriteAllText(Path.Combine(status, "000000010000000000000002.partial.tmp"), "");

        var backlog = ReadyBacklog.Read(_dir.FullName, _time.GetUtcNow());

        Assert.Equal((2, 2 * Segment, 1), (backlog.Count, backlog.Bytes, backlog.DoneFiles));
    }

    [Fact]
    public void BlockingRepos_LatestPushFailedOnRepo2_OnlyRepo2()
    {
        var t = new DateTimeOffset(2026, 12, 4, 12, 0, 0, TimeSpan.Zero);
        var stats = new ArchiveStats(
        [
            new RepositoryArchiveStats(1, 10, 1, 0, "old", t, t.AddMinutes(1)),
            new RepositoryArchiveStats(2, 9, 3, 0, "repo2: [HostConnectError]", t.AddMinutes(2), t.AddMinutes(1)),
            new RepositoryArchiveStats(3, 10, 0, 0, null, null, t.AddMinutes(1)),
        ], null, null, 0, []);
        Assert.Equal([2], stats.BlockingRepos);
    }
}
