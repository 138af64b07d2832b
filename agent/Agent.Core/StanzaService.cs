using Backrest.Agent.Core.PgBackRest;

namespace Backrest.Agent.Core;

public sealed record RepositoryCheck(int Repo, bool Ok, string Message);

/// <summary>stanza-create and check: the two commands that prove the path from PostgreSQL to every repository.</summary>
public sealed class StanzaService(PgBackRestClient pgBackRest, Configuration.AgentOptions options, Postgres.PostgresClient postgres)
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
        var warnings = PgBackRestErrors.Warnings(result.Stderr).ToList();
        return warnings.Count == 0
            ? $"Stanza '{pgBackRest.Stanza}' exists and is valid on every repository."
            : $"Stanza '{pgBackRest.Stanza}' created with warnings: {string.Join(" ", warnings)}";
    }

    /// <summary>
    /// Runs <c>pgbackrest check</c>: it archives a WAL segment and waits for it in every repository.
    /// pgBackRest 2.45 cannot check one repository alone, so failures are attributed to the repositories
    /// its error names ("repo2: [HostConnectError] ..."); when it names none, every repository failed.
    /// </summary>
    public async Task<IReadOnlyList<RepositoryCheck>> CheckAsync(CancellationToken cancellationToken)
    {
        var repos = Enumerable.Range(1, options.Repositories.Count).ToList();
        var result = await pgBackRest.RunAsync("check", [], cancellationToken).ConfigureAwait(false);
        if (result.ExitCode == 0)
        {
            return repos.Select(r => new RepositoryCheck(r, true, "WAL archived; backup and archive settings valid.")).ToList();
        }

        var error = PgBackRestErrors.FromFailure("check", result.ExitCode, result.Stderr);
        var message = $"{error.Message} {error.Hint}".Trim();
        var named = PgBackRestErrors.NamedRepositories(result.Stderr);
        return repos.Select(r => named.Count == 0 || named.Contains(r)
            ? new RepositoryCheck(r, false, message)
            : new RepositoryCheck(r, true, "No error reported for this repository.")).ToList();
    }
}
