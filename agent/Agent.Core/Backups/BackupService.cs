using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Status;

namespace Backrest.Agent.Core.Backups;

public sealed record BackupOutcome(string RequestedType, string Type, int Repo, BackupInfo? Backup) : OperationResult
{
    public override string? BackupLabel => Backup?.Label;

    /// <summary>A full backup covers a later diff and incr of the same repository; a diff covers an incr.</summary>
    public bool Covers(string type, int repo) =>
        repo == Repo && (Type == "full" ? type is "diff" or "incr" : Type == "diff" && type == "incr");
}

/// <summary>Takes backups, one at a time, and lists them.</summary>
public sealed class BackupService(
    PgBackRestClient pgBackRest,
    OperationRegistry operations,
    AgentOptions options,
    AgentRuntime runtime,
    Postgres.PostgresClient postgres,
    StatusCache cache,
    TimeProvider time)
{
    public static readonly string[] BackupTypes = ["full", "diff", "incr"];

    /// <summary>pgBackRest 2.48+ reports the running backup's copied bytes in info's backup lock: a second progress source.</summary>
    private static readonly Version InfoProgressVersion = new(2, 48);

    private static readonly TimeSpan InfoProgressInterval = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Validates the request (nothing bad reaches pgBackRest), checks that a backup can work here
    /// (a primary, a created stanza), and starts the backup operation.
    /// </summary>
    public async Task<OperationSnapshot> StartAsync(string type, int repo, CancellationToken cancellationToken,
        bool queueIfBusy = false, OperationTrigger trigger = OperationTrigger.Manual)
    {
        if (!BackupTypes.Contains(type))
        {
            throw AgentException.InvalidArgument($"Backup type '{type}' is not valid: use full, diff or incr.");
        }

        var repoKey = ResolveRepo(options, repo);
        if (operations.Running is null)
        {
            await CheckPreconditionsAsync(repoKey, cancellationToken).ConfigureAwait(false);
        }

        var checkedNow = operations.Running is null;
        return operations.Start(new OperationRequest(OperationKind.Backup, $"{type} backup to repo{repoKey}",
            async (handle, ct) =>
            {
                if (!checkedNow)
                {
                    // It waited in the queue: the primary may have moved or the stanza gone since.
                    await CheckPreconditionsAsync(repoKey, ct).ConfigureAwait(false);
                }

                return await RunAsync(handle, type, repoKey, ct).ConfigureAwait(false);
            })
        {
            Trigger = trigger,
            BackupType = type,
            Repo = repoKey,
            IsCoveredBy = finished => finished is BackupOutcome done && done.Covers(type, repoKey),
        }, queueIfBusy);
    }

    private async Task CheckPreconditionsAsync(int repo, CancellationToken cancellationToken)
    {
        var state = await postgres.GetStateAsync(cancellationToken).ConfigureAwait(false);
        if (!state.Reachable)
        {
            throw new AgentException(AgentErrorKind.Unavailable, $"PostgreSQL is not reachable, so no online backup can start: {state.Error}",
                "Check that PostgreSQL runs and that Agent:Postgres:SocketDirectory and Port point at it.");
        }

        if (state.InRecovery)
        {
            throw AgentException.FailedPrecondition("This PostgreSQL is a standby: backups run on the primary.",
                "Send the backup to the primary's agent (backrestctl picks it when given every agent).");
        }

        // This repository's info alone, under the cache's deadline: another repository, dead or slow, delays nothing here.
        var info = await cache.RefreshRepositoryAsync(repo, cancellationToken).ConfigureAwait(false);
        var repoStatus = info.Repositories.FirstOrDefault(r => r.Key == repo);
        if (repoStatus is { StatusCode: 1 or 3 })
        {
            throw AgentException.FailedPrecondition(
                $"Stanza '{options.Stanza}' is not created on repo{repo} ({repoStatus.StatusMessage}).", "Create the stanza first (CreateStanza).");
        }
    }

    /// <summary>From the status cache (never a pgBackRest run), with the time its oldest repository info was read.</summary>
    public async Task<Cached<IReadOnlyList<BackupInfo>>> ListAsync(int repo, CancellationToken cancellationToken)
    {
        int? repoKey = repo == 0 ? null : ResolveRepo(options, repo);
        await cache.WaitForFirstReadAsync(cancellationToken).ConfigureAwait(false);
        var snapshot = cache.Snapshot();
        var backups = snapshot.Info?.Backups.Where(b => repoKey is null || b.RepoKey == repoKey).ToList() ?? [];
        return new Cached<IReadOnlyList<BackupInfo>>(backups, snapshot.InfoReadAt);
    }

    /// <summary>0 means the first repository; otherwise 1..4 and configured.</summary>
    public static int ResolveRepo(AgentOptions options, int repo)
    {
        if (repo == 0)
        {
            return 1;
        }

        if (repo is < 1 or > AgentOptionsValidator.MaxRepositories)
        {
            throw AgentException.InvalidArgument($"repo {repo} is not valid: pgBackRest repositories are numbered 1 to {AgentOptionsValidator.MaxRepositories}.");
        }

        if (repo > options.Repositories.Count)
        {
            throw AgentException.InvalidArgument(
                $"repo {repo} is not configured on this agent (configured: {string.Join(", ", Enumerable.Range(1, options.Repositories.Count).Select(r => $"repo{r}"))}).");
        }

        return repo;
    }

    private async Task<OperationResult?> RunAsync(OperationHandle handle, string type, int repo, CancellationToken cancellationToken)
    {
        // The backup waits for the segment before its start to be archived; don't let it wait out the archiver's sleep.
        if (await postgres.WakeStalledArchiverAsync(cancellationToken).ConfigureAwait(false))
        {
            handle.ReportPhase("woke PostgreSQL's archiver: WAL segments were waiting after failed archive attempts");
        }

        handle.ReportProgress(0, "starting backup");
        var progress = new BackupProgress((percent, phase) => handle.ReportProgress(percent, phase));
        string? label = null;
        ProcessResult result;
        using (var stopPolling = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            var poll = runtime.Capabilities.Version >= InfoProgressVersion
                ? progress.PollAsync(ct => ReadLockProgressAsync(repo, ct), InfoProgressInterval, time, stopPolling.Token)
                : Task.CompletedTask;
            try
            {
                result = await pgBackRest.RunAsync("backup", [$"--type={type}", $"--repo={repo}"], cancellationToken,
                    line =>
                    {
                        if (ConsoleProgress.ParsePercent(line) is { } percent)
                        {
                            progress.Report(percent, "copying files");
                        }
                        else if (ConsoleProgress.ParseInfo(line) is { } info && !ConsoleProgress.IsCommandBoundary(info))
                        {
                            // pgBackRest names the backup it took; a label list compared before and after would also
                            // catch a backup someone else took meanwhile.
                            label ??= ConsoleProgress.ParseNewBackupLabel(line);
                            handle.ReportPhase(info);
                        }
                    },
                    // A backup interrupted by SIGTERM stops its PostgreSQL backup cleanly; it gets what the agent's shutdown leaves.
                    terminateGrace: OperationRegistry.TerminateReserve).ConfigureAwait(false);
            }
            finally
            {
                // No poll may report after the result (nor outlive the operation).
                await stopPolling.CancelAsync().ConfigureAwait(false);
                try
                {
                    await poll.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // Stopped just above.
                }
            }
        }

        // Unset retention was said once at start-up and is in status; pgBackRest's expire-auto repeats it on every backup.
        foreach (var warning in PgBackRestErrors.Warnings(result.Stderr).Where(w => !w.Contains("-retention-full' is not set", StringComparison.Ordinal)))
        {
            handle.AddWarning(warning);
        }

        if (result.ExitCode != 0)
        {
            throw PgBackRestErrors.FromFailure("backup", result.ExitCode, result.Stderr);
        }

        handle.ReportPhase("reading the new backup");
        var after = await cache.RefreshRepositoryAsync(repo, cancellationToken).ConfigureAwait(false);
        var taken = after.Backups.FirstOrDefault(b => b.RepoKey == repo && b.Label == label);
        if (taken is null)
        {
            handle.AddWarning(label is null
                ? "pgBackRest did not print the new backup's label; list the backups to find it."
                : $"The new backup {label} is not in repo{repo}'s backup list (expired at once by retention?).");
        }

        var takenType = taken?.Type ?? type;
        if (takenType != type)
        {
            handle.AddWarning($"Requested a {type} backup; pgBackRest took a {takenType} backup (no prior backup it could build on).");
        }

        var configured = runtime.Settings.CompressType.Value;
        if (taken is not null && takenType != "full" && result.Stderr.Contains("compress-type", StringComparison.Ordinal))
        {
            handle.AddWarning($"This {takenType} backup keeps its full backup's compression type, not the configured '{configured}': " +
                "take a full backup to switch.");
        }

        return new BackupOutcome(type, takenType, repo, taken);
    }

    /// <summary>The running backup's copied share of its size, from info's backup lock (null when info does not say).</summary>
    private async Task<double?> ReadLockProgressAsync(int repo, CancellationToken cancellationToken)
    {
        var info = await pgBackRest.InfoAsync(cancellationToken, repo).ConfigureAwait(false);
        return info.BackupLock is { Held: true, Size: > 0 and var size, SizeComplete: { } done } ? 100.0 * done / size : null;
    }
}
