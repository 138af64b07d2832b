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
    Cluster.BackupLease lease,
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
        var description = $"{type} backup to repo{repoKey}";
        Cluster.LeaseHandle? held = null;
        if (operations.Running is null)
        {
            await CheckPreconditionsAsync(repoKey, cancellationToken).ConfigureAwait(false);
            // Taken before the operation starts, so that a backup another agent runs is refused to the caller at once. A
            // repository that cannot be written is the backup's failure, as pgBackRest's would be: the operation retries and fails.
            try
            {
                held = await lease.AcquireAsync(repoKey, description, cancellationToken).ConfigureAwait(false);
            }
            catch (AgentException ex) when (ex.Kind == AgentErrorKind.Unavailable)
            {
                held = null;
            }
        }

        try
        {
            return operations.Start(new OperationRequest(OperationKind.Backup, description,
                async (handle, ct) =>
                {
                    if (held is null)
                    {
                        // It waited in the queue: the primary may have moved, the stanza gone, or another agent started one.
                        await CheckPreconditionsAsync(repoKey, ct).ConfigureAwait(false);
                        held = await lease.AcquireAsync(repoKey, description, ct).ConfigureAwait(false);
                    }

                    await using var claim = held;
                    return await RunHoldingAsync(handle, claim, type, repoKey, ct).ConfigureAwait(false);
                })
            {
                Trigger = trigger,
                BackupType = type,
                Repo = repoKey,
                IsCoveredBy = finished => finished is BackupOutcome done && done.Covers(type, repoKey),
            }, queueIfBusy);
        }
        catch when (held is not null)
        {
            await held.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs the backup while the cluster-wide lease is ours; losing it stops the backup.</summary>
    private async Task<OperationResult?> RunHoldingAsync(OperationHandle handle, Cluster.LeaseHandle claim, string type, int repo, CancellationToken cancellationToken)
    {
        await claim.AttachAsync(handle.Id, cancellationToken).ConfigureAwait(false);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, claim.Lost);
        try
        {
            // Inside the operation (a checkpoint may take a while) and only once the repository is ours.
            await postgres.CheckpointIfTimelineChangedAsync(handle.ReportPhase, either.Token).ConfigureAwait(false);
            return await RunAsync(handle, type, repo, either.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (claim.LostReason is { } why && !cancellationToken.IsCancellationRequested)
        {
            throw new AgentException(AgentErrorKind.Aborted, $"The backup to repo{repo} was stopped: this agent lost the repository's backup lease ({why}).",
                "Check which agent backs up now (backrestctl --cluster NAME:PORT status); take a new backup once it is done.");
        }
    }

    private async Task CheckPreconditionsAsync(int repo, CancellationToken cancellationToken)
    {
        var state = await postgres.GetStateAsync(cancellationToken).ConfigureAwait(false);
        if (!state.Reachable)
        {
            throw new AgentException(AgentErrorKind.Unavailable, $"PostgreSQL is not reachable, so no online backup can start: {state.Error}",
                "Check that PostgreSQL runs and that Agent:Postgres:SocketDirectory and Port point at it.");
        }

        if (state.InRecovery && options.Cluster.BackupFrom != "standby")
        {
            throw AgentException.FailedPrecondition(
                $"This PostgreSQL is a standby and this agent ({options.Cluster.ResolveMember()}) is not the cluster's backup source " +
                "(Agent:Cluster:BackupFrom=primary): backups run on the primary.",
                "Send the backup to the primary's agent (backrestctl --cluster NAME:PORT backup picks it).");
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
                result = await pgBackRest.RunAsync("backup", [$"--type={type}", $"--repo={repo}", .. await StandbyArgumentsAsync(cancellationToken).ConfigureAwait(false)], cancellationToken,
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

    /// <summary>
    /// On the backup source's standby: pgBackRest's backup-standby, with the primary as pg2 over its TLS server (no SSH).
    /// pgBackRest starts and stops the backup on the primary and copies most files from this standby. Given on the
    /// command line, not in pgbackrest.conf, so that archive-push/-get and restores never see a remote pg.
    /// </summary>
    private async Task<IEnumerable<string>> StandbyArgumentsAsync(CancellationToken cancellationToken)
    {
        if (options.Cluster.BackupFrom != "standby" || !(await postgres.GetStateAsync(cancellationToken).ConfigureAwait(false)).InRecovery)
        {
            return [];
        }

        var primary = options.Cluster.Primary;
        var pg = options.Postgres;
        return
        [
            "--backup-standby",
            $"--pg2-host={primary.Host}",
            "--pg2-host-type=tls",
            $"--pg2-host-port={primary.Port.ToString(System.Globalization.CultureInfo.InvariantCulture)}",
            $"--pg2-host-cert-file={primary.CertificateFile}",
            $"--pg2-host-key-file={primary.KeyFile}",
            $"--pg2-host-ca-file={primary.CaFile}",
            $"--pg2-path={primary.DataDirectory ?? pg.DataDirectory}",
            $"--pg2-port={(primary.PostgresPort ?? pg.Port).ToString(System.Globalization.CultureInfo.InvariantCulture)}",
            $"--pg2-socket-path={primary.SocketDirectory ?? pg.SocketDirectory}",
            $"--pg2-user={pg.User}",
            $"--pg2-database={pg.Database}",
        ];
    }

    /// <summary>The running backup's copied share of its size, from info's backup lock (null when info does not say).</summary>
    private async Task<double?> ReadLockProgressAsync(int repo, CancellationToken cancellationToken)
    {
        var info = await pgBackRest.InfoAsync(cancellationToken, repo).ConfigureAwait(false);
        return info.BackupLock is { Held: true, Size: > 0 and var size, SizeComplete: { } done } ? 100.0 * done / size : null;
    }
}
