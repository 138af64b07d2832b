using System.Collections.Concurrent;
using Backrest.Agent.Core.Backups;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Status;

namespace Backrest.Agent.Core.Verify;

/// <summary>
/// Runs <c>pgbackrest verify</c> (every backup file and WAL segment read back and checked against its checksum) as an
/// operation in the exclusive lane, one repository after another, on demand or on a schedule. The last report of each
/// repository is kept for status and metrics.
/// </summary>
public sealed class VerifyService(PgBackRestClient pgBackRest, StatusCache cache, OperationRegistry operations, AgentOptions options, TimeProvider time)
{
    private readonly ConcurrentDictionary<int, VerifyReport> _last = new(LastFromHistory(operations.History));

    /// <summary>The last report of each repository verified, from the operation history at start-up (it survives restarts).</summary>
    public IReadOnlyDictionary<int, VerifyReport> Last => _last;

    /// <summary>Each repository's newest report among the verifies the history kept.</summary>
    internal static Dictionary<int, VerifyReport> LastFromHistory(OperationHistory history)
    {
        var last = new Dictionary<int, VerifyReport>();
        foreach (var record in history.List(history.Capacity).Reverse()) // oldest first: a newer report replaces an older one
        {
            foreach (var report in record.Verify?.Repositories ?? [])
            {
                last[report.Repo] = report;
            }
        }

        return last;
    }

    /// <param name="repo">0: every repository.</param>
    public OperationSnapshot Start(int repo, bool queueIfBusy = false, OperationTrigger trigger = OperationTrigger.Manual)
    {
        var repos = repo == 0 ? Enumerable.Range(1, options.Repositories.Count).ToList() : [BackupService.ResolveRepo(options, repo)];
        return operations.Start(new OperationRequest(OperationKind.Verify, Description(repo == 0 ? 0 : repos[0]),
            (handle, ct) => RunAsync(handle, repos, ct))
        {
            Trigger = trigger,
            // The queue holds one verify per repository.
            BackupType = "verify",
            Repo = repo == 0 ? 0 : repos[0],
        }, queueIfBusy);
    }

    /// <summary>How a verify operation describes itself (schedules find their last run by it).</summary>
    public static string Description(int repo) => repo == 0 ? "verify of every repository" : $"verify of repo{repo}";

    private async Task<OperationResult?> RunAsync(OperationHandle handle, IReadOnlyList<int> repos, CancellationToken cancellationToken)
    {
        var reports = new List<VerifyReport>();
        for (var i = 0; i < repos.Count; i++)
        {
            handle.ReportProgress(100.0 * i / repos.Count, $"verifying repo{repos[i]}");
            // Without --verbose, 2.45 prints nothing at all when everything is valid.
            var result = await pgBackRest.RunAsync("verify", [$"--repo={repos[i]}", "--output=text", "--verbose"], cancellationToken,
                keepWholeStdout: true).ConfigureAwait(false);
            var report = result.ExitCode == 0
                ? VerifyReport.Parse(repos[i], result.Stdout, time.GetUtcNow()).WithArchiveHeld(NewestArchived(repos[i]))
                : new VerifyReport(repos[i], false, [], 0, PgBackRestErrors.FromFailure("verify", result.ExitCode, result.Stderr).Message, time.GetUtcNow());
            _last[repos[i]] = report;
            reports.Add(report);
            if (!report.Ok)
            {
                // Warnings stay in the history with the operation, after a restart too.
                handle.AddWarning(report.Describe());
            }
        }

        handle.ReportProgress(100, "done");
        return new VerifyOutcome(reports);
    }

    /// <summary>The newest segment info last named in <paramref name="repo"/>'s archive (any archive id), if any.</summary>
    private string? NewestArchived(int repo) =>
        cache.Snapshot().Repositories.FirstOrDefault(r => r.Repo == repo)?.Read.Info?.Archives
            .Select(a => a.Max).OfType<string>().Max(StringComparer.Ordinal);
}
