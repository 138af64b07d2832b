using System.Text.RegularExpressions;
using Backrest.Agent.Core.Operations;

namespace Backrest.Agent.Core.Verify;

/// <summary>One archive id or backup that verify found damaged, with pgBackRest's counters ("checksum invalid: 1").</summary>
public sealed record VerifyFinding(string Kind, string Name, long Checked, long Valid, string Details)
{
    public long Invalid => Checked - Valid;

    public string Describe() => Kind == "backup"
        ? $"backup {Name}: {Invalid} of {Checked} files invalid{(Details.Length > 0 ? $" ({Details})" : "")}"
        : $"archive {Name}: {Invalid} of {Checked} WAL files invalid{(Details.Length > 0 ? $" ({Details})" : "")}";
}

/// <summary>
/// What <c>pgbackrest verify</c> said of one repository. 2.45 exits 0 when it finds damaged files (its text output says
/// "status: error"), and non-zero when it cannot read one at all (<see cref="Error"/>): both are not <see cref="Ok"/>.
/// </summary>
public sealed partial record VerifyReport(int Repo, bool Ok, IReadOnlyList<VerifyFinding> Findings, long JobErrors, string? Error, DateTimeOffset Finished)
{
    /// <summary>WAL segments verify read back, over every archive id it found.</summary>
    public long WalChecked { get; init; }

    /// <summary>
    /// Why the report proves less than it says, though pgBackRest printed "status: ok": set when verify checked no WAL
    /// while the repository's archive holds some (see <see cref="WithArchiveHeld"/>).
    /// </summary>
    public string? Unproven { get; init; }

    /// <summary>Files and WAL found invalid plus verify's own job errors; 1 when verify could not finish.</summary>
    public long Errors => Error is not null ? Math.Max(1, Findings.Sum(f => f.Invalid) + JobErrors) : Findings.Sum(f => f.Invalid) + JobErrors;

    public string Describe()
    {
        if (Error is not null)
        {
            return $"repo{Repo}: verify could not finish: {Error}";
        }

        if (Unproven is not null)
        {
            return $"repo{Repo}: {Unproven}";
        }

        if (Ok)
        {
            return $"repo{Repo}: verify ok";
        }

        var parts = Findings.Select(f => f.Describe()).ToList();
        if (JobErrors > 0)
        {
            parts.Add($"{JobErrors} job error(s)");
        }

        return $"repo{Repo}: verify found errors: {(parts.Count == 0 ? "status error" : string.Join("; ", parts))}. " +
               "Take a new full backup to this repository; restore from another repository or an older backup until it exists.";
    }

    /// <summary>
    /// This report, not ok, when verify checked no WAL at all while info names archived segments in the repository up
    /// to <paramref name="newestArchived"/>. pgBackRest finds archive ids by listing the stanza's archive path; a store
    /// whose delimited listing leaves out a prefix holding no object directly (s3rver does) hides the whole archive
    /// from verify, which then says "archiveId: none found" and "status: ok" (2.45).
    /// </summary>
    public VerifyReport WithArchiveHeld(string? newestArchived) =>
        Error is null && Ok && WalChecked == 0 && newestArchived is not null
            ? this with
            {
                Ok = false,
                Unproven = $"verify checked no WAL segment, yet the archive holds segments up to {newestArchived}: pgBackRest " +
                           "did not find the archive in the store's listing, so the WAL was not read back (backups were). Check " +
                           "that the store lists prefixes the way S3 does, and rely on the archive continuity check and a " +
                           "restore drill for this repository's WAL.",
            }
            : this;

    /// <summary>
    /// Reads verify's text output: "status: ok|error", then per archive id "archiveId: 15-1, total WAL checked: N, total
    /// valid WAL: M" and per backup "backup: LABEL, status: valid|invalid, total files checked: N, total valid files: M",
    /// each followed by a line of counters ("missing: 0, checksum invalid: 1, ...").
    /// </summary>
    public static VerifyReport Parse(int repo, string output, DateTimeOffset finished)
    {
        bool? ok = null;
        long jobErrors = 0, walChecked = 0;
        var findings = new List<VerifyFinding>();
        (string Kind, string Name, long Checked, long Valid, bool Bad)? current = null;
        void Close(string details)
        {
            if (current is { } c && (c.Bad || c.Checked != c.Valid))
            {
                findings.Add(new VerifyFinding(c.Kind, c.Name, c.Checked, c.Valid, details));
            }

            current = null;
        }

        foreach (var raw in output.Split('\n'))
        {
            var line = raw.TrimEnd();
            if (StatusLine().Match(line) is { Success: true } status)
            {
                ok = status.Groups[1].Value == "ok";
            }
            else if (JobErrorsLine().Match(line) is { Success: true } job)
            {
                jobErrors = long.Parse(job.Groups[1].Value);
            }
            else if (ArchiveLine().Match(line) is { Success: true } archive)
            {
                Close("");
                var checkedWal = long.Parse(archive.Groups[2].Value);
                walChecked += checkedWal;
                current = ("archive", archive.Groups[1].Value, checkedWal, long.Parse(archive.Groups[3].Value), false);
            }
            else if (BackupLine().Match(line) is { Success: true } backup)
            {
                Close("");
                current = ("backup", backup.Groups[1].Value, long.Parse(backup.Groups[3].Value), long.Parse(backup.Groups[4].Value),
                    backup.Groups[2].Value != "valid");
            }
            else if (current is not null && line.StartsWith("    ", StringComparison.Ordinal))
            {
                // The counters line: keep only the non-zero counters.
                Close(string.Join(", ", line.Trim().Split(", ").Where(c => !c.EndsWith(": 0", StringComparison.Ordinal))));
            }
        }

        Close("");
        return ok is null
            ? new VerifyReport(repo, false, findings, jobErrors, "pgbackrest verify printed no status line", finished)
            : new VerifyReport(repo, ok.Value && findings.Count == 0 && jobErrors == 0, findings, jobErrors, null, finished) { WalChecked = walChecked };
    }

    [GeneratedRegex(@"^status: (\w+)$")]
    private static partial Regex StatusLine();

    [GeneratedRegex(@"^\s+job errors: (\d+)$")]
    private static partial Regex JobErrorsLine();

    [GeneratedRegex(@"^\s+archiveId: ([^,]+), total WAL checked: (\d+), total valid WAL: (\d+)")]
    private static partial Regex ArchiveLine();

    [GeneratedRegex(@"^\s+backup: ([^,]+), status: (\w+), total files checked: (\d+), total valid files: (\d+)")]
    private static partial Regex BackupLine();
}

/// <summary>The result of a verify operation: one report per repository verified.</summary>
public sealed record VerifyOutcome(IReadOnlyList<VerifyReport> Repositories) : OperationResult
{
    public override string? BackupLabel => null;

    public bool Ok => Repositories.All(r => r.Ok);
}
