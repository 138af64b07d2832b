using Backrest.Agent.Core.PgBackRest;

namespace Backrest.Agent.Core;

public sealed record RepositoryCheck(int Repo, bool Ok, string Message);

/// <summary>stanza-create and check: the two commands that prove the path from PostgreSQL to every repository.</summary>
public sealed class StanzaService(PgBackRestClient pgBackRest, Configuration.AgentOptions options)
{
    /// <summary>Idempotent: an existing valid stanza is fine.</summary>
    public async Task<string> CreateAsync(CancellationToken cancellationToken)
    {
        var result = await pgBackRest.RunCheckedAsync("stanza-create", [], cancellationToken).ConfigureAwait(false);
        var warnings = PgBackRestErrors.Warnings(result.Stderr).ToList();
        return warnings.Count == 0
            ? $"Stanza '{pgBackRest.Stanza}' exists and is valid on every repository."
            : $"Stanza '{pgBackRest.Stanza}' created with warnings: {string.Join(" ", warnings)}";
    }

    /// <summary>
    /// Runs <c>pgbackrest check</c> per repository, so one dead repository is reported as such rather
    /// than hiding the others' state: check archives a WAL segment and waits for it to arrive.
    /// </summary>
    public async Task<IReadOnlyList<RepositoryCheck>> CheckAsync(CancellationToken cancellationToken)
    {
        var checks = new List<RepositoryCheck>();
        for (var repo = 1; repo <= options.Repositories.Count; repo++)
        {
            var result = await pgBackRest.RunAsync("check", [$"--repo={repo}"], cancellationToken).ConfigureAwait(false);
            checks.Add(result.ExitCode == 0
                ? new RepositoryCheck(repo, true, "WAL archived and backup settings valid.")
                : new RepositoryCheck(repo, false, PgBackRestErrors.FromFailure("check", result.ExitCode, result.Stderr) is var e
                    ? $"{e.Message} {e.Hint}".Trim()
                    : ""));
        }

        return checks;
    }
}
