using System.Text.RegularExpressions;
using Backrest.Agent.Core.Archive;
using Backrest.Agent.Core.Backups;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Postgres;
using Backrest.Agent.Core.Status;

namespace Backrest.Agent.Core.Restore;

/// <summary>
/// Restores full, delta and point-in-time, in place or into a new directory. Every request is checked
/// against the repository's contents and the state of the target directory before pgBackRest runs:
/// a refused restore leaves the data directory untouched.
/// </summary>
public sealed partial class RestoreService(
    PgBackRestClient pgBackRest,
    OperationRegistry operations,
    ArchiveService archive,
    PostgresReadingCache postgres,
    AgentOptions options,
    StatusCache cache,
    RecoveryReachedWatcher recoveryReached,
    TimeProvider time)
{
    private static readonly string[] TargetTypes = ["latest", "immediate", "time", "xid", "lsn", "name", "standby"];
    private static readonly string[] TargetActions = ["pause", "promote", "shutdown"];
    private const int MaxDataDirectoryBytes = 900;

    /// <summary>Validates, then starts the restore as an operation.</summary>
    public async Task<OperationSnapshot> StartAsync(RestoreRequest request, CancellationToken cancellationToken)
    {
        var plan = await PlanAsync(request, cancellationToken).ConfigureAwait(false);
        return operations.Start(new OperationRequest(OperationKind.Restore, plan.Description, async (handle, ct) =>
        {
            var outcome = await RunAsync(handle, plan, ct).ConfigureAwait(false);
            // Whoever starts the restored cluster, the agent reports where its recovery ends (status, log).
            recoveryReached.Watch(handle.Id, outcome.DataDirectory, outcome.Repo == 0 ? 1 : outcome.Repo,
                toLatest: request.TargetType is "" or "latest");
            return outcome;
        }));
    }

    /// <summary>Runs the restore in the foreground (one-shot mode for init containers and Jobs).</summary>
    public async Task<RestoreOutcome> RunNowAsync(RestoreRequest request, Action<OperationSnapshot> onProgress, CancellationToken cancellationToken)
    {
        var started = await StartAsync(request, cancellationToken).ConfigureAwait(false);
        OperationSnapshot last = started;
        await foreach (var snapshot in operations.WatchAsync(started.Id, cancellationToken).ConfigureAwait(false))
        {
            onProgress(snapshot);
            last = snapshot;
        }

        return last.State == OperationState.Succeeded
            ? (RestoreOutcome)last.Result!
            : throw new AgentException(last.Error?.Kind ?? AgentErrorKind.Unknown, last.Error?.Message ?? "The restore failed.",
                last.Error?.Hint, last.Error?.PgBackRestCode ?? 0);
    }

    /// <summary>
    /// From the status cache (never a pgBackRest run). The newest WAL is the later of the cached info's archive max and
    /// the last segment the agent acknowledged to PostgreSQL (stored in every repository by then), so the window's end
    /// moves with each push, not only with each refresh.
    /// </summary>
    public async Task<Cached<IReadOnlyList<RecoveryWindow>>> GetWindowsAsync(int repo, CancellationToken cancellationToken)
    {
        var repos = repo == 0 ? Enumerable.Range(1, options.Repositories.Count) : [BackupService.ResolveRepo(options, repo)];
        await cache.WaitForFirstReadAsync(cancellationToken).ConfigureAwait(false);
        var snapshot = cache.Snapshot();
        var stats = archive.GetStats();
        var archiver = (await postgres.GetAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false)).Archiver;
        var windows = repos.Select(r => RecoveryWindow.Current(snapshot.Info, r, stats, archiver, snapshot.Repositories[r - 1].Continuity)).ToList();
        return new Cached<IReadOnlyList<RecoveryWindow>>(windows, snapshot.InfoReadAt);
    }

    /// <summary>Every check the agent can make before pgBackRest touches a file.</summary>
    internal async Task<RestorePlan> PlanAsync(RestoreRequest request, CancellationToken cancellationToken)
    {
        var type = request.TargetType.Length == 0 ? "latest" : request.TargetType;
        if (!TargetTypes.Contains(type))
        {
            throw AgentException.InvalidArgument($"target_type '{type}' is not valid: use {string.Join(", ", TargetTypes)}.");
        }

        var needsTarget = type is "time" or "xid" or "lsn" or "name";
        var target = request.Target.Trim();
        if (needsTarget && target.Length == 0)
        {
            throw AgentException.InvalidArgument($"target_type '{type}' needs a target ({TargetExample(type)}).");
        }

        if (!needsTarget && target.Length > 0)
        {
            throw AgentException.InvalidArgument($"target_type '{type}' takes no target (got '{target}'); use time, xid, lsn or name for a point in time.");
        }

        if (request.TargetAction.Length > 0 && !TargetActions.Contains(request.TargetAction))
        {
            throw AgentException.InvalidArgument($"target_action '{request.TargetAction}' is not valid: use pause, promote or shutdown.");
        }

        if (request.TargetAction.Length > 0 && type is "latest" or "standby")
        {
            throw AgentException.InvalidArgument($"target_action applies only to immediate, time, xid, lsn and name targets, not '{type}'.");
        }

        if (request.TargetExclusive && type is not ("time" or "xid" or "lsn"))
        {
            throw AgentException.InvalidArgument("target_exclusive applies only to time, xid and lsn targets.");
        }

        var timeline = request.TargetTimeline is "current" or "latest" ? request.TargetTimeline : RestoreTargets.ParseTimeline(request.TargetTimeline);
        if (request.TargetTimeline.Length > 0 && (type == "immediate" || timeline is null))
        {
            throw AgentException.InvalidArgument(type == "immediate"
                ? "target_timeline cannot be set with an immediate target (it always uses the backup's timeline)."
                : $"target_timeline '{request.TargetTimeline}' is not valid: use current, latest or a timeline number from 1 to 4294967295 such as 2 or 0x2.");
        }

        if (request.Port is < 0 or > 65535)
        {
            throw AgentException.InvalidArgument($"port {request.Port} is not valid (1-65535, or 0 to keep the cluster's own).");
        }

        if (request.Set.Length > 0 && !LabelPattern().IsMatch(request.Set))
        {
            throw AgentException.InvalidArgument($"set '{request.Set}' is not a backup label (like 20261124-114826F or 20261124-114826F_20261124-114848I).");
        }

        // 0: pgBackRest chooses (no --repo): the first repository, in order, holding a backup that satisfies the target,
        // so a restore still works when a repository is dead or empty. Every check below then considers all of them.
        int? repo = request.Repo == 0 ? null : BackupService.ResolveRepo(options, request.Repo);
        var (dataDirectory, inPlace) = ResolveDirectory(request.DataDirectory);
        var where = repo is { } r ? $"repo{r}" : "any repository";

        // Targets are checked before the directory so a bad request says what is wrong with it first.
        // Read now, but only where it matters: the chosen repository alone, or (pgBackRest choosing) the reachable ones,
        // so a dead repository delays nothing and the plan still sees a backup taken a moment ago.
        var info = repo is { } one
            ? await cache.RefreshRepositoryAsync(one, cancellationToken).ConfigureAwait(false)
            : await cache.RefreshReachableAsync(cancellationToken).ConfigureAwait(false)
              ?? throw new AgentException(AgentErrorKind.Unavailable, "No repository's backups could be read, so no restore can be planned.",
                  "Check the repositories (backrestctl status names each one's error class), then try again.");
        var backups = info.Backups.Where(b => repo is null || b.RepoKey == repo).ToList();
        var window = DescribeWindows(info, repo);
        if (backups.Count == 0)
        {
            throw AgentException.FailedPrecondition($"{where} holds no backup of stanza '{options.Stanza}': there is nothing to restore.",
                "Take a backup first (StartBackup), or choose another repository.");
        }

        BackupInfo? chosen = null;
        if (request.Set.Length > 0)
        {
            // Without --repo pgBackRest restores the set from the first repository holding it.
            chosen = backups.Where(b => b.Label == request.Set).MinBy(b => b.RepoKey)
                ?? throw AgentException.NotFound($"Backup '{request.Set}' does not exist on {where}.",
                    $"List backups (ListBackups) to pick one; the newest on {where} is {backups.MaxBy(b => b.Stop)!.Label}.");
        }

        var args = new List<string>();
        if (repo is not null)
        {
            args.Add($"--repo={repo}");
        }

        if (chosen is not null)
        {
            args.Add($"--set={chosen.Label}");
        }

        var targetText = "";
        switch (type)
        {
            case "latest":
                break;
            case "time":
                var when = RestoreTargets.ParseTime(target)
                    ?? throw AgentException.InvalidArgument(
                        $"Time target '{target}' is not understood: use 'YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]' (no offset means UTC). {window}.");
                if (when > time.GetUtcNow().AddSeconds(5))
                {
                    throw AgentException.InvalidArgument($"Time target {RestoreTargets.FormatTime(when)} is in the future. {window}.");
                }

                var timeBasis = chosen ?? backups.MinBy(b => b.Stop)!;
                if (when < timeBasis.Stop)
                {
                    throw AgentException.FailedPrecondition(
                        $"Time target {RestoreTargets.FormatTime(when)} is before the end of the " +
                        (chosen is null ? "oldest backup" : $"chosen backup {chosen.Label}") + $", so no backup can reach it. {window}.",
                        "Pick a later time, or an older backup set if another repository has one.");
                }

                // Without a set, pgBackRest picks the newest backup whose stop time (recorded in whole seconds) is strictly
                // before the target's whole second, and fails with error 75 when none is: a target inside the second the
                // oldest backup ended cannot be restored that way (the backup may have ended after it).
                if (chosen is null && RestoreTargets.TruncateToSecond(when) <= timeBasis.Stop)
                {
                    throw AgentException.FailedPrecondition(
                        $"Time target {RestoreTargets.FormatTime(when)} falls in the second the oldest backup {timeBasis.Label} ended " +
                        $"({timeBasis.Stop:yyyy-MM-dd HH:mm:ss}+00; stop times are recorded to the second), so no backup is known to end before it. " +
                        $"{window}.",
                        $"Pick a time at or after {timeBasis.Stop.AddSeconds(1):yyyy-MM-dd HH:mm:ss}+00, or use an lsn or xid target.");
                }

                targetText = RestoreTargets.FormatTime(when);
                args.AddRange(["--type=time", $"--target={targetText}"]);
                break;
            case "xid":
                if (!RestoreTargets.IsXid(target))
                {
                    throw AgentException.InvalidArgument($"xid target '{target}' is not a transaction id (a whole number, such as 735).");
                }

                targetText = target;
                args.AddRange(["--type=xid", $"--target={target}"]);
                break;
            case "lsn":
                var lsn = RestoreTargets.ParseLsn(target)
                    ?? throw AgentException.InvalidArgument($"lsn target '{target}' is not an LSN (like 0/3000050).");
                var basis = chosen ?? backups.MinBy(b => b.Stop)!;
                if (RestoreTargets.ParseLsn(basis.LsnStop) is { } stop && lsn < stop)
                {
                    throw AgentException.FailedPrecondition(
                        $"lsn target {target} is before the end of backup {basis.Label} (lsn {basis.LsnStop}), so no backup can reach it. {window}.",
                        "Pick a later LSN.");
                }

                targetText = target;
                args.AddRange(["--type=lsn", $"--target={target}"]);
                break;
            case "name":
                if (!RestoreTargets.IsRestorePointName(target))
                {
                    throw AgentException.InvalidArgument($"Restore point name '{target}' is not valid (1-63 characters, no quotes, backslashes or control characters).");
                }

                targetText = target;
                args.AddRange(["--type=name", $"--target={target}"]);
                break;
            default: // immediate, standby
                args.Add($"--type={type}");
                break;
        }

        if (request.TargetAction.Length > 0)
        {
            args.Add($"--target-action={request.TargetAction}");
        }

        if (request.TargetExclusive)
        {
            args.Add("--target-exclusive");
        }

        if (timeline is not null)
        {
            args.Add($"--target-timeline={timeline}");
        }

        // An interrupted restore leaves pgBackRest's backup.manifest (and maybe no PG_VERSION yet): pgBackRest accepts
        // either for a delta, so a retry after a crash or kill resumes instead of being refused as "not empty".
        var holdsCluster = File.Exists(Path.Combine(dataDirectory, "PG_VERSION")) || File.Exists(Path.Combine(dataDirectory, "backup.manifest"));
        CheckDirectory(dataDirectory, inPlace, holdsCluster);
        var delta = request.Delta ?? holdsCluster;
        if (delta)
        {
            args.Add("--delta");
        }

        if (!inPlace)
        {
            args.Add($"--pg1-path={dataDirectory}");
            if (!request.ArchiveModeOn)
            {
                // A copy must never push its WAL into the source's stanza.
                args.Add("--archive-mode=off");
            }
        }

        // The PostgreSQL container has no pgBackRest: recovery fetches WAL through the agent's archive client.
        args.Add($"--recovery-option=restore_command={options.Postgres.ArchiveClientPath} --socket {options.Listen.ArchiveSocket} get %f \"%p\"");
        if (request.Port > 0)
        {
            args.Add($"--recovery-option=port={request.Port}");
        }

        var what = type switch
        {
            "latest" => "to the end of archived WAL",
            "immediate" => "to the backup's consistent point",
            "standby" => "as a standby replaying archived WAL",
            _ => $"to {type} {targetText}",
        };
        var description = $"{(delta ? "delta " : "")}restore {what} from {(repo is null ? "the repository pgBackRest chooses" : where)}{(chosen is null ? "" : $" backup {chosen.Label}")} " +
            (inPlace ? "in place" : $"into {dataDirectory}");
        var nextStep = inPlace
            ? "Start PostgreSQL: it replays WAL to the target" + (type == "standby" ? " and stays a standby." : ".")
            : $"Start the copy: pg_ctl -D {dataDirectory}{(request.Port > 0 ? "" : " -o '-p <free port>'")} start" +
              (request.ArchiveModeOn ? "." : " (archive_mode is off in the copy).");
        return new RestorePlan(args, dataDirectory, inPlace, description, chosen?.Label, chosen?.RepoKey ?? repo, nextStep);
    }

    /// <summary>What each considered repository can restore to, for messages about a target outside it.</summary>
    private string DescribeWindows(StanzaInfo info, int? repo)
    {
        var repos = repo is { } r ? [r] : Enumerable.Range(1, options.Repositories.Count).ToArray();
        var holding = repos.Where(n => info.Backups.Any(b => b.RepoKey == n)).DefaultIfEmpty(repos[0]);
        return string.Join("; ", holding.Select(n => RecoveryWindow.For(info, n, null, null).Describe()));
    }

    private (string Directory, bool InPlace) ResolveDirectory(string requested)
    {
        var live = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.Postgres.DataDirectory));
        if (requested.Length == 0)
        {
            return (live, true);
        }

        if (!Path.IsPathFullyQualified(requested) || requested.Any(char.IsControl))
        {
            throw AgentException.InvalidArgument($"data_directory '{requested}' must be an absolute path without control characters.");
        }

        // PostgreSQL keeps paths in MAXPGPATH (1024) bytes, including the files below the data directory.
        if (System.Text.Encoding.UTF8.GetByteCount(requested) is var bytes and > MaxDataDirectoryBytes)
        {
            throw AgentException.InvalidArgument(
                $"data_directory is {bytes} bytes long: PostgreSQL needs it under {MaxDataDirectoryBytes}.");
        }

        var path = Path.TrimEndingDirectorySeparator(Path.GetFullPath(requested));
        if (File.Exists(path))
        {
            throw AgentException.FailedPrecondition($"data_directory '{path}' is a file, not a directory.", "Choose an empty or non-existent directory.");
        }

        if (path == live)
        {
            return (live, true);
        }

        if (IsInside(path, live) || IsInside(live, path))
        {
            throw AgentException.InvalidArgument($"data_directory '{path}' overlaps the live data directory '{live}': choose a separate directory.");
        }

        var agentPaths = options.Repositories.Where(r => Repositories.RepositoryKind.Of(r) is Repositories.PosixRepository).Select(r => ("the repository", r.Path))
            .Append(("pgBackRest's log path", options.PgBackRest.LogPath))
            .Append(("pgBackRest's lock path", options.PgBackRest.LockPath))
            .Append(("pgBackRest's spool path", options.PgBackRest.SpoolPath))
            .Append(("the agent's configuration directory", Path.GetDirectoryName(options.PgBackRest.ConfigPath) ?? "/"));
        foreach (var (what, agentPath) in agentPaths)
        {
            var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(agentPath));
            if (path == full || IsInside(path, full) || IsInside(full, path))
            {
                throw AgentException.InvalidArgument($"data_directory '{path}' overlaps {what} '{full}': choose a separate directory.");
            }
        }

        return (path, false);
    }

    private static void CheckDirectory(string directory, bool inPlace, bool holdsCluster)
    {
        var pidFile = Path.Combine(directory, "postmaster.pid");
        if (File.Exists(pidFile))
        {
            var pid = File.ReadLines(pidFile).FirstOrDefault()?.Trim();
            var alive = int.TryParse(pid, out var p) && Directory.Exists($"/proc/{p}");
            throw AgentException.FailedPrecondition(
                alive
                    ? $"PostgreSQL is running on {directory} (pid {pid}): a restore there would destroy the live cluster."
                    : $"{directory} has a postmaster.pid (pid {pid}), so PostgreSQL may be running there.",
                inPlace
                    ? "Stop PostgreSQL first (pg_ctl stop -m fast), then restore; or restore into a new data_directory. " +
                      "Remove postmaster.pid only if you are sure no server uses this directory."
                    : "Stop that server or choose another data_directory.");
        }

        if (!inPlace && Directory.Exists(directory) && !holdsCluster && Directory.EnumerateFileSystemEntries(directory).Any())
        {
            throw AgentException.FailedPrecondition(
                $"{directory} is not empty and holds no PostgreSQL cluster: the agent will not overwrite it.",
                "Choose an empty or non-existent directory.");
        }
    }

    /// <summary>Runs a planned restore under the given operation (a restore, or a drill that restores first).</summary>
    internal async Task<RestoreOutcome> RunAsync(OperationHandle handle, RestorePlan plan, CancellationToken cancellationToken)
    {
        string? holding = null;
        if (plan.InPlace)
        {
            var unarchived = UnarchivedWal.Find(plan.DataDirectory);
            if (unarchived.Count > 0)
            {
                handle.ReportPhase($"setting aside {unarchived.Count} WAL segment(s) that were never archived");
                holding = Path.Combine(options.PgBackRest.SpoolPath, "unarchived-wal", handle.Id);
                UnarchivedWal.SetAside(unarchived, holding);
            }
        }

        // pgBackRest's restore deletes the stanza's archive spool (old push acknowledgements must not reach a new
        // cluster). A copy restored beside the live cluster must not delete the live cluster's: a push waiting for
        // its acknowledgement would then stall until archive-timeout. So a copy gets a spool of its own.
        var arguments = plan.Arguments;
        string? copySpool = null;
        if (!plan.InPlace)
        {
            copySpool = Path.Combine(options.PgBackRest.SpoolPath, "restore", handle.Id);
            arguments = [.. arguments, $"--spool-path={copySpool}"];
        }

        handle.ReportProgress(0, "restoring files");
        ProcessResult result;
        (int Repo, string Label)? restoredSet = null;
        try
        {
            result = await pgBackRest.RunAsync("restore", arguments, cancellationToken, line =>
            {
                if (ConsoleProgress.ParsePercent(line) is { } percent)
                {
                    handle.ReportProgress(percent, "restoring files");
                }
                else if (ConsoleProgress.ParseInfo(line) is { } info && !ConsoleProgress.IsCommandBoundary(info))
                {
                    // "repo1: restore backup set ..." comes first; at detail level a line per file follows it.
                    restoredSet ??= ConsoleProgress.ParseRestoredSet(line);
                    handle.ReportPhase(info);
                }
            }).ConfigureAwait(false);
        }
        finally
        {
            if (copySpool is not null)
            {
                RemoveCopySpool(handle, copySpool);
            }
        }

        foreach (var warning in PgBackRestErrors.Warnings(result.Stderr))
        {
            handle.AddWarning(warning);
        }

        if (result.ExitCode != 0)
        {
            var error = PgBackRestErrors.FromFailure("restore", result.ExitCode, result.Stderr);
            throw holding is null
                ? error
                : new AgentException(error.Kind, error.Message,
                    $"{error.Hint} WAL that was never archived is kept in {holding}: copy it into pg_wal after a successful restore.".Trim(),
                    error.PgBackRestCode);
        }

        if (holding is not null)
        {
            var restored = UnarchivedWal.PutBack(holding, plan.DataDirectory);
            Directory.Delete(holding, recursive: true);
            handle.AddWarning($"{restored} WAL segment(s) in pg_wal had never been archived; they were put back after the restore " +
                "so recovery replays them after the archive.");
        }

        // pgBackRest names the repository and set it used; without --repo only it knows.
        var label = restoredSet?.Label ?? plan.ExpectedSet ?? "";
        return new RestoreOutcome(plan.DataDirectory, label, plan.NextStep) { Repo = restoredSet?.Repo ?? plan.ExpectedRepo ?? 0 };
    }

    /// <summary>Best effort: a leftover empty spool directory must not turn the restore's outcome into an error.</summary>
    private static void RemoveCopySpool(OperationHandle handle, string copySpool)
    {
        try
        {
            if (Directory.Exists(copySpool))
            {
                Directory.Delete(copySpool, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            handle.AddWarning($"Could not remove the restore's own spool {copySpool}: {ex.Message}");
        }
    }

    private static bool IsInside(string path, string directory) =>
        path.StartsWith(directory + "/", StringComparison.Ordinal);

    private static string TargetExample(string type) => type switch
    {
        "time" => "e.g. '2026-11-25 12:00:00+00'",
        "xid" => "a transaction id, e.g. 735",
        "lsn" => "e.g. 0/3000050",
        _ => "a restore point created with pg_create_restore_point()",
    };

    [GeneratedRegex(@"^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?\z")]
    internal static partial Regex LabelPattern();
}
