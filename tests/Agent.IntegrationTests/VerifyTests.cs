using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// pgBackRest's verify exits 0 when it finds a damaged file: the agent reads its output, so a damaged backup fails
/// `backrestctl verify`, shows in status and in metrics, and the verify schedule runs it as an operation.
/// </summary>
public sealed class VerifyTests
{
    [Fact]
    public async Task Verify_BackupFileDamaged_CliFailsNamingItStatusAndMetricsCountIt_ScheduleRunsIt()
    {
        var scheduled = DateTimeOffset.UtcNow.AddSeconds(30);
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?>
            {
                ["Agent__Repositories__0__Schedules__Verify"] = $"{scheduled.Second} {scheduled.Minute} {scheduled.Hour} * * *",
                // One repository file per backup file, so the test can damage exactly one.
                ["Agent__Repositories__0__Bundle"] = "false",
            },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        var label = (await env.BackupAsync("full")).BackupLabel;

        var clean = await env.CliAsync("verify", "--wait");
        Assert.True(clean.Succeeded, clean.ToString());
        Assert.Contains("verify succeeded", clean.StandardOutput);

        // Another file's content under PG_VERSION's name: still a valid compressed stream, so only verify's checksum
        // comparison can tell.
        var data = Path.Combine(env.Agent.RepositoryPath, "backup", env.Stanza, label, "pg_data");
        var version = Directory.GetFiles(data, "PG_VERSION.*").Single();
        var other = Directory.GetFiles(data, "postgresql.auto.conf.*").Single();
        File.Copy(other, version, overwrite: true);

        var damaged = await env.CliAsync("verify", "--wait");
        Assert.Equal(1, damaged.ExitCode);
        Assert.Contains($"backup {label}: 1 of ", damaged.StandardOutput + damaged.StandardError);
        Assert.Contains("invalid: 1)", damaged.StandardOutput + damaged.StandardError);

        var status = await env.Client.GetStatusAsync(new GetStatusRequest());
        var verify = status.Pgbackrest.Repositories[0].Verify;
        Assert.False(verify.Ok);
        Assert.Equal(1, verify.Errors);
        Assert.Equal(("backup", label), (verify.Findings.Single().Kind, verify.Findings.Single().Name));
        Assert.Contains(status.Warnings, w => w.Contains(label, StringComparison.Ordinal));
        using var http = new HttpClient();
        var text = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
        Assert.Equal(0, MetricsTests.Value(text, "pgbackrest_verify_last_status", "repo=\"1\""));
        Assert.Equal(1, MetricsTests.Value(text, "pgbackrest_verify_errors", "repo=\"1\""));

        // Kept with the operation history: after a restart status and metrics still show the damage.
        Assert.Equal(0, await env.Agent.StopAsync());
        await env.Agent.StartAsync();
        var reloaded = (await env.Client.GetStatusAsync(new GetStatusRequest())).Pgbackrest.Repositories[0].Verify;
        Assert.Equal((false, 1L, verify.Finished), (reloaded.Ok, reloaded.Errors, reloaded.Finished));
        Assert.Equal(("backup", label), (reloaded.Findings.Single().Kind, reloaded.Findings.Single().Name));
        var afterRestart = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
        Assert.Equal(0, MetricsTests.Value(afterRestart, "pgbackrest_verify_last_status", "repo=\"1\""));
        Assert.Equal(1, MetricsTests.Value(afterRestart, "pgbackrest_verify_errors", "repo=\"1\""));

        Operation? fromSchedule = null;
        await AgentTestExtensions.WaitUntilAsync(async () =>
        {
            var history = await env.Client.ListOperationsAsync(new ListOperationsRequest());
            fromSchedule = history.Operations.FirstOrDefault(o => o.Kind == OperationKind.Verify && o.Trigger == OperationTrigger.Schedule &&
                                                                  OperationReport(o));
            return fromSchedule is not null;
        }, TimeSpan.FromSeconds(90), () => $"no scheduled verify ended\n{env.Agent.LogTail(30)}");
        Assert.Equal("verify of repo1", fromSchedule!.Description);
        Assert.Contains(fromSchedule.Warnings, w => w.Contains(label, StringComparison.Ordinal));
        var schedule = Assert.Single((await env.Client.ListSchedulesAsync(new ListSchedulesRequest())).Schedules);
        Assert.Equal(("verify", fromSchedule.Id), (schedule.Type, schedule.Last.Id));
    }

    private static bool OperationReport(Operation o) => o.State is OperationState.Succeeded or OperationState.Failed;
}
