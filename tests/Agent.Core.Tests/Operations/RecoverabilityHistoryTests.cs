using Backrest.Agent.Core.Drills;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.Verify;

namespace Backrest.Agent.Core.Tests.Operations;

/// <summary>
/// The last verify and drill of each repository come back from the operation history file after a restart (a new
/// OperationHistory on the same file), figures and all: status and metrics show them without waiting for the next run.
/// </summary>
public sealed class RecoverabilityHistoryTests : IDisposable
{
    private static readonly DateTimeOffset Noon = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
    private readonly string _directory = Directory.CreateTempSubdirectory("recoverability-history-").FullName;

    private string HistoryFile => Path.Combine(_directory, "agent-operations.json");

    public void Dispose() => TempDirectories.Delete(_directory);

    private static OperationSnapshot Finished(string id, OperationKind kind, string description, OperationState state, DateTimeOffset at,
        OperationResult? result = null) =>
        new(id, kind, description, state, at.AddMinutes(-5), at, 100, "done", [], null, result);

    [Fact]
    public void Drills_AfterRestart_LastOfEachRepositoryWithItsFigures_CancelledIgnored()
    {
        var outcome = new DrillOutcome(1, "20261205-110000F", TimeSpan.FromSeconds(12.5), TimeSpan.FromSeconds(3.25), "0/5000110",
            "000000010000000000000005", Noon.AddMinutes(-61), "000000010000000000000006", ["rows=1234", "total=761995"]) { Shortfall = true };
        var before = new OperationHistory(HistoryFile);
        before.Record(Finished("d1", OperationKind.Drill, DrillService.Description(1), OperationState.Failed, Noon.AddHours(-2)));
        before.Record(Finished("d2", OperationKind.Drill, DrillService.Description(1), OperationState.Succeeded, Noon.AddHours(-1), outcome));
        before.Record(Finished("d3", OperationKind.Drill, DrillService.Description(1), OperationState.Cancelled, Noon));
        before.Record(Finished("d4", OperationKind.Drill, DrillService.Description(2), OperationState.Failed, Noon));

        var last = DrillService.LastFromHistory(new OperationHistory(HistoryFile), repositories: 3);

        Assert.Equal([1, 2], last.Keys.Order());
        var (succeeded, figures, finished) = last[1];
        Assert.True(succeeded);
        Assert.Equal(Noon.AddHours(-1), finished);
        Assert.Equal(outcome with { Check = figures!.Check }, figures);
        Assert.Equal(outcome.Check, figures.Check);
        Assert.Equal(TimeSpan.FromSeconds(15.75), figures.RecoveryTime);
        Assert.True(figures.Shortfall);
        Assert.Equal((false, null, Noon), (last[2].Succeeded, last[2].Outcome, last[2].Finished));
        // `operation <id>` after a restart answers from the history, now with the drill's figures.
        Assert.Equal("0/5000110", Assert.IsType<DrillOutcome>(new OperationHistory(HistoryFile).Find("d2")!.ToSnapshot().Result).RecoveredLsn);
    }

    [Fact]
    public void Verifies_AfterRestart_NewestReportOfEachRepository_FromSingleAndAllRepositoryRuns()
    {
        var damaged = new VerifyReport(1, false, [new VerifyFinding("backup", "20261205-110000F", 970, 969, "checksum invalid: 1")], 0, null, Noon);
        var before = new OperationHistory(HistoryFile);
        before.Record(Finished("v1", OperationKind.Verify, VerifyService.Description(0), OperationState.Succeeded, Noon.AddHours(-1),
            new VerifyOutcome([new VerifyReport(1, true, [], 0, null, Noon.AddHours(-1)), new VerifyReport(2, true, [], 0, null, Noon.AddHours(-1))])));
        var unproven = new VerifyReport(3, true, [], 0, null, Noon).WithArchiveHeld("000000010000000000000003");
        before.Record(Finished("v2", OperationKind.Verify, VerifyService.Description(1), OperationState.Succeeded, Noon, new VerifyOutcome([damaged, unproven])));

        var last = VerifyService.LastFromHistory(new OperationHistory(HistoryFile));

        Assert.Equal([1, 2, 3], last.Keys.Order());
        Assert.Equal((false, unproven.Unproven), (last[3].Ok, last[3].Unproven));
        Assert.Contains("000000010000000000000003", last[3].Describe());
        Assert.False(last[1].Ok);
        Assert.Equal(1, last[1].Errors);
        Assert.Equal(damaged.Findings.Single(), last[1].Findings.Single());
        Assert.Equal(Noon, last[1].Finished);
        Assert.True(last[2].Ok);
        Assert.Equal(Noon.AddHours(-1), last[2].Finished);
    }

    [Fact]
    public void History_WrittenBeforeFiguresWereKept_StillLoads()
    {
        File.WriteAllText(HistoryFile,
            """[{"id":"d1","kind":"Drill","description":"restore drill of repo1","trigger":"Manual","state":"Succeeded","started":"2026-12-05T11:55:00+00:00","finished":"2026-12-05T12:00:00+00:00","error":null,"backupLabel":"20261205-110000F","warnings":[]}]""");

        var last = DrillService.LastFromHistory(new OperationHistory(HistoryFile), repositories: 1);

        Assert.Equal((true, null, Noon), (last[1].Succeeded, last[1].Outcome, last[1].Finished));
    }
}
