using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Core.Retention;

/// <summary>
/// A repository's retention as configured (rendered into pgbackrest.conf; pgBackRest applies it after each backup with
/// expire-auto). Unset full retention means pgBackRest expires nothing: said once at start-up and in status.
/// </summary>
public sealed record RetentionPolicy(int Repo, int? Full, string FullType, int? Diff, int? Archive, string? ArchiveType)
{
    public static readonly string[] FullTypes = ["count", "time"];
    public static readonly string[] ArchiveTypes = ["full", "diff", "incr"];

    public bool Configured => Full is not null;

    public string Describe() => !Configured
        ? "not configured: nothing is expired"
        : $"full {Full} ({(FullType == "time" ? "days" : "backups")})" + (Diff is { } d ? $", diff {d}" : "") +
          (Archive is { } a ? $", archive {a} ({ArchiveType ?? "full"})" : "");

    public static IReadOnlyList<RetentionPolicy> All(AgentOptions options) =>
        options.Repositories.Select((r, i) => new RetentionPolicy(i + 1, r.RetentionFull, r.RetentionFullType ?? "count", r.RetentionDiff,
            r.RetentionArchive, r.RetentionArchiveType)).ToList();

    /// <summary>
    /// How far back the repository should be able to restore once retention is full: RetentionFull days (time), or
    /// RetentionFull - 1 intervals of the full schedule (count: the oldest kept full is that old when the newest ends).
    /// Null when that cannot be known (no retention, or counted fulls without a full schedule).
    /// </summary>
    public TimeSpan? ExpectedWindow(TimeSpan? fullInterval) => (Full, FullType) switch
    {
        (null, _) => null,
        ({ } days, "time") => TimeSpan.FromDays(days),
        ({ } count, _) when fullInterval is { } interval => interval * (count - 1),
        _ => null,
    };

    /// <summary>One start-up warning per repository without retention (not one per backup).</summary>
    public static IEnumerable<string> Warnings(AgentOptions options) =>
        All(options).Where(p => !p.Configured).Select(p =>
            $"repo{p.Repo} has no retention (Agent:Repositories:{p.Repo - 1}:RetentionFull is unset): pgBackRest expires nothing " +
            "and the repository grows until it is full. Set RetentionFull (a count, or days with RetentionFullType=time).");

    /// <summary>pgbackrest.conf lines for repo <paramref name="key"/>.</summary>
    public static IEnumerable<(string Key, string Value)> ConfigLines(int key, RepositoryOptions repo)
    {
        var p = $"repo{key}-";
        if (repo.RetentionFull is { } full)
        {
            yield return (p + "retention-full", full.ToString());
        }

        if (repo.RetentionFullType is { } fullType)
        {
            yield return (p + "retention-full-type", fullType);
        }

        if (repo.RetentionDiff is { } diff)
        {
            yield return (p + "retention-diff", diff.ToString());
        }

        if (repo.RetentionArchive is { } archive)
        {
            yield return (p + "retention-archive", archive.ToString());
        }

        if (repo.RetentionArchiveType is { } archiveType)
        {
            yield return (p + "retention-archive-type", archiveType);
        }
    }

    public static void Validate(List<string> errors, string at, RepositoryOptions repo)
    {
        if (repo.RetentionFull is < 1)
        {
            errors.Add($"{at}:RetentionFull must be at least 1.");
        }

        if (repo.RetentionDiff is < 1)
        {
            errors.Add($"{at}:RetentionDiff must be at least 1.");
        }

        if (repo.RetentionArchive is < 1)
        {
            errors.Add($"{at}:RetentionArchive must be at least 1.");
        }

        if (repo.RetentionFullType is { } fullType && !FullTypes.Contains(fullType))
        {
            errors.Add($"{at}:RetentionFullType '{fullType}' is not valid: use count (RetentionFull backups) or time (RetentionFull days).");
        }

        if (repo.RetentionArchiveType is { } archiveType && !ArchiveTypes.Contains(archiveType))
        {
            errors.Add($"{at}:RetentionArchiveType '{archiveType}' is not valid: use full, diff or incr.");
        }

        if (repo.RetentionArchiveType == "incr" && repo.RetentionArchive is null)
        {
            errors.Add($"{at}:RetentionArchiveType incr needs {at}:RetentionArchive (pgBackRest requires it).");
        }
    }
}
