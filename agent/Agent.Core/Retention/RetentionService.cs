using System.Text.RegularExpressions;
using Backrest.Agent.Core.Backups;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Restore;
using Backrest.Agent.Core.Status;

namespace Backrest.Agent.Core.Retention;

/// <summary>A backup set pgBackRest expired (or would): the backup and the ones that depend on it.</summary>
public sealed record ExpiredSet(int Repo, IReadOnlyList<string> Labels);

/// <summary>A range of WAL pgBackRest removed (or would) from a repository's archive.</summary>
public sealed record ExpiredArchive(int Repo, string ArchiveId, string Start, string Stop);

public sealed record ExpireOutcome(bool DryRun, IReadOnlyList<ExpiredSet> Backups, IReadOnlyList<ExpiredArchive> Archive) : OperationResult
{
    public override string? BackupLabel => null;
}

/// <summary>What deleting one backup removes, and the oldest backup left (the start of the recovery window after).</summary>
public sealed record DeleteOutcome(bool DryRun, int Repo, string Label, IReadOnlyList<string> Removed, BackupInfo? OldestRemaining) : OperationResult
{
    public override string? BackupLabel => Label;
}

/// <summary>
/// Expires by the configured retention (or shows what it would), and deletes one backup with what depends on it, after
/// the checks pgBackRest does not make: never the only full backup, only the oldest unless forced, never one a running
/// restore reads. Both run in the exclusive lane, as pgBackRest's expire takes the backup lock.
/// </summary>
public sealed partial class RetentionService(PgBackRestClient pgBackRest, OperationRegistry operations, AgentOptions options, StatusCache cache)
{
    public async Task<ExpireOutcome> ExpireAsync(int repo, bool dryRun, CancellationToken cancellationToken)
    {
        int? repoKey = repo == 0 ? null : BackupService.ResolveRepo(options, repo);
        List<string> args = repoKey is { } key ? [$"--repo={key}"] : [];
        if (dryRun)
        {
            args.Add("--dry-run");
        }

        var description = $"{(dryRun ? "dry run of " : "")}expire by retention on {(repoKey is { } k ? $"repo{k}" : "every repository")}";
        return (ExpireOutcome)await RunAsync(OperationKind.Expire, description, async (handle, ct) =>
        {
            var lines = new List<string>();
            var result = await pgBackRest.RunAsync("expire", args, ct, line =>
            {
                lock (lines)
                {
                    lines.Add(line);
                }
            }).ConfigureAwait(false);
            if (result.ExitCode != 0)
            {
                throw PgBackRestErrors.FromFailure("expire", result.ExitCode, result.Stderr);
            }

            if (!dryRun)
            {
                // Lists answer from the status cache: this read refreshes it before the caller sees the result.
                await pgBackRest.InfoAsync(ct, repoKey).ConfigureAwait(false);
            }

            return Parse(dryRun, lines);
        }, cancellationToken).ConfigureAwait(false);
    }

    public async Task<DeleteOutcome> DeleteAsync(string label, int repo, bool force, bool dryRun, CancellationToken cancellationToken)
    {
        if (!RestoreService.LabelPattern().IsMatch(label))
        {
            throw AgentException.InvalidArgument($"'{label}' is not a backup label (like 20261124-114826F or 20261124-114826F_20261124-114848D).");
        }

        var repoKey = BackupService.ResolveRepo(options, repo);
        // This repository's info alone, under the cache's deadline: another repository, dead or slow, delays nothing here.
        var info = await cache.RefreshRepositoryAsync(repoKey, cancellationToken).ConfigureAwait(false);
        var backups = info.Backups.Where(b => b.RepoKey == repoKey).ToList();
        var target = backups.FirstOrDefault(b => b.Label == label)
            ?? throw AgentException.NotFound($"Backup {label} does not exist on repo{repoKey}.",
                "List the backups (backrestctl backups) to pick one.");

        // The backup and every backup that builds on it, directly or through another.
        var removed = new List<string> { label };
        foreach (var b in backups)
        {
            if (b.Prior is { } prior && removed.Contains(prior) && !removed.Contains(b.Label))
            {
                removed.Add(b.Label);
            }
        }

        var remaining = backups.Where(b => !removed.Contains(b.Label)).ToList();
        var what = removed.Count == 1 ? $"backup {label}" : $"backup {label} and the {removed.Count - 1} backup(s) built on it ({string.Join(", ", removed.Skip(1))})";
        if (target.Type == "full" && !remaining.Any(b => b.Type == "full"))
        {
            throw AgentException.FailedPrecondition(
                $"Cannot delete {what}: {label} is the only full backup of repo{repoKey}, so no backup would be left to restore from.",
                "Take another full backup first (backrestctl backup --type full), then delete this one.");
        }

        if (backups[0].Label != label && !force)
        {
            throw AgentException.FailedPrecondition(
                $"Cannot delete {what}: it is not the oldest backup of repo{repoKey} (the oldest is {backups[0].Label}), so deleting it " +
                "leaves a gap in the points a restore can reach.",
                "Delete the oldest backups first, or pass --force (force = true) to delete it anyway.");
        }

        if (operations.Running is { Kind: OperationKind.Restore } restore && removed.Any(l => restore.Description.Contains(l, StringComparison.Ordinal)))
        {
            throw AgentException.FailedPrecondition(
                $"Cannot delete {what}: the running restore {restore.Id} ({restore.Description}) reads it.",
                $"Wait for the restore to finish (backrestctl operation {restore.Id} --wait), then delete.");
        }

        var oldest = remaining.FirstOrDefault();
        if (dryRun)
        {
            return new DeleteOutcome(true, repoKey, label, removed, oldest);
        }

        return (DeleteOutcome)await RunAsync(OperationKind.Delete, $"delete {what} from repo{repoKey}", async (handle, ct) =>
        {
            handle.ReportPhase("expiring the backup set");
            // pgBackRest exits 0 for a label it does not know: the info read above and the one below decide.
            await pgBackRest.RunCheckedAsync("expire", [$"--set={label}", $"--repo={repoKey}"], ct).ConfigureAwait(false);
            var after = await cache.RefreshRepositoryAsync(repoKey, ct).ConfigureAwait(false);
            var left = after.Backups.Where(b => b.RepoKey == repoKey && removed.Contains(b.Label)).Select(b => b.Label).ToList();
            if (left.Count > 0)
            {
                throw new AgentException(AgentErrorKind.Internal,
                    $"pgBackRest's expire --set={label} ended, but repo{repoKey} still lists {string.Join(", ", left)}.",
                    "Read the agent's log and pgBackRest's expire log, then try again.");
            }

            return new DeleteOutcome(false, repoKey, label, removed, after.Backups.FirstOrDefault(b => b.RepoKey == repoKey));
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Runs in the exclusive lane (ABORTED naming the running operation if busy) and answers with the result.</summary>
    private async Task<OperationResult> RunAsync(OperationKind kind, string description,
        Func<OperationHandle, CancellationToken, Task<OperationResult?>> work, CancellationToken cancellationToken)
    {
        var started = operations.Start(new OperationRequest(kind, description, work));
        OperationSnapshot last = started;
        await foreach (var snapshot in operations.WatchAsync(started.Id, cancellationToken).ConfigureAwait(false))
        {
            last = snapshot;
        }

        return last is { State: OperationState.Succeeded, Result: { } result }
            ? result
            : throw new AgentException(last.Error?.Kind ?? AgentErrorKind.Unknown, last.Error?.Message ?? $"{description} failed.",
                last.Error?.Hint, last.Error?.PgBackRestCode ?? 0);
    }

    /// <summary>Reads pgBackRest's expire lines ("[DRY-RUN] repo1: expire full backup set A, B"; "repo1: 15-1 remove archive, start = X, stop = Y").</summary>
    internal static ExpireOutcome Parse(bool dryRun, IEnumerable<string> lines)
    {
        var backups = new List<ExpiredSet>();
        var archive = new List<ExpiredArchive>();
        foreach (var line in lines)
        {
            if (ExpiredSetLine().Match(line) is { Success: true } set)
            {
                backups.Add(new ExpiredSet(int.Parse(set.Groups[1].Value), set.Groups[2].Value.Split(", ")));
            }
            else if (RemovedArchiveLine().Match(line) is { Success: true } wal)
            {
                archive.Add(new ExpiredArchive(int.Parse(wal.Groups[1].Value), wal.Groups[2].Value, wal.Groups[3].Value, wal.Groups[4].Value));
            }
        }

        return new ExpireOutcome(dryRun, backups, archive);
    }

    [GeneratedRegex(@"repo([0-9]+): expire (?:[\w-]+ )*backup set:? ([0-9A-Z_, -]+?)\s*$")]
    private static partial Regex ExpiredSetLine();

    [GeneratedRegex(@"repo([0-9]+): (\S+) remove archive, start = ([0-9A-F]+), stop = ([0-9A-F]+)")]
    private static partial Regex RemovedArchiveLine();
}
