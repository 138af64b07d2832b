using Backrest.Agent.Core.PgBackRest;

namespace Backrest.Agent.Core;

public sealed record RepositoryCheck(int Repo, bool Ok, string Message);

/// <summary>stanza-create and check: the two commands that prove the path from PostgreSQL to every repository.</summary>
public sealed class StanzaService(PgBackRestClient pgBackRest, Configuration.AgentOptions options, Postgres.PostgresClient postgres, Status.StatusCache cache)
{
    private const int LockAcquireError = 50;
    private static readonly TimeSpan LockPatience = TimeSpan.FromSeconds(15);

    /// <summary>Idempotent: an existing valid stanza is fine.</summary>
    public async Task<string> CreateAsync(CancellationToken cancellationToken)
    {
        // stanza-create needs the archive lock, which PostgreSQL's archive-push attempts hold for a moment each (they
        // fail until the stanza exists, and PostgreSQL retries them): wait for a gap instead of failing the request.
        // Only a lock another process holds (flock's EAGAIN) is worth waiting for, not an unwritable lock path.
        var deadline = DateTimeOffset.UtcNow + LockPatience;
        ProcessResult result;
        while ((result = await pgBackRest.RunAsync("stanza-create", [], cancellationToken).ConfigureAwait(false)) is
               { ExitCode: LockAcquireError } && result.Stderr.Contains("Resource temporarily unavailable", StringComparison.Ordinal) &&
               DateTimeOffset.UtcNow < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken).ConfigureAwait(false);
        }

        if (result.ExitCode != 0)
        {
            throw PgBackRestErrors.FromFailure("stanza-create", result.ExitCode, result.Stderr);
        }

        // WAL finished before the stanza existed could not be archived; PostgreSQL's archiver may be sleeping on it.
        await postgres.WakeStalledArchiverAsync(cancellationToken).ConfigureAwait(false);
        // Status and lists answer from the cache: let them see the new stanza now, not at the next interval.
        await cache.RefreshAsync(cancellationToken).ConfigureAwait(false);
        var warnings = PgBackRestErrors.Warnings(result.Stderr).ToList();
        return warnings.Count == 0
            ? $"Stanza '{pgBackRest.Stanza}' exists and is valid on every repository."
            : $"Stanza '{pgBackRest.Stanza}' created with warnings: {string.Join(" ", warnings)}";
    }

    /// <summary>
    /// Runs <c>pgbackrest check</c> once per repository, in parallel, each with a configuration holding that repository
    /// alone (pgBackRest 2.45's check has no --repo): a dead repository fails its own check and no other. Each check has
    /// a deadline, since a dead remote repository makes pgBackRest retry for minutes. pgBackRest's check passes with a
    /// hole in the archive, so the status cache re-reads and lists every archive meanwhile, and a gap fails the
    /// repository's check, naming the missing segments.
    /// </summary>
    public async Task<IReadOnlyList<RepositoryCheck>> CheckAsync(CancellationToken cancellationToken)
    {
        var listing = cache.RefreshAfterRunningAsync(cancellationToken);
        var checks = await Task.WhenAll(Enumerable.Range(1, options.Repositories.Count).Select(r => CheckOneAsync(r, cancellationToken)))
            .ConfigureAwait(false);
        await listing.ConfigureAwait(false);
        var repositories = cache.Snapshot().Repositories;
        return checks.Select(c => Continuity(repositories[c.Repo - 1]) is { } problem
            ? c with { Ok = false, Message = (c.Ok ? "" : c.Message + " ") + problem }
            : c).ToList();
    }

    /// <summary>Why the repository's archive cannot be trusted for a restore to latest; null when it is continuous.</summary>
    private static string? Continuity(Status.CachedRepository repository) => repository switch
    {
        { ContinuityError: { } error } => $"Its archive could not be listed to look for gaps: {error}",
        { Continuity: { Continuous: false } continuity } => continuity.Describe(),
        _ => null,
    };

    private async Task<RepositoryCheck> CheckOneAsync(int repo, CancellationToken cancellationToken)
    {
        var limit = TimeSpan.FromSeconds(options.PgBackRest.ArchiveTimeoutSeconds + options.PgBackRest.IoTimeoutSeconds);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        ProcessResult result;
        try
        {
            result = await pgBackRest.RunAsync("check", [], deadline.Token, terminateGrace: TimeSpan.FromSeconds(2), onlyRepo: repo)
                .ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new RepositoryCheck(repo, false,
                $"check did not finish within {limit.TotalSeconds:0} s: repo{repo} is probably unreachable (see its reachability in status).");
        }

        if (result.ExitCode == 0)
        {
            return new RepositoryCheck(repo, true, "WAL archived; backup and archive settings valid.");
        }

        var error = PgBackRestErrors.FromFailure("check", result.ExitCode, result.Stderr);
        return new RepositoryCheck(repo, false, $"{error.Message} {error.Hint}".Trim());
    }
}
