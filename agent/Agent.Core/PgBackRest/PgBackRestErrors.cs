using System.Text;
using System.Text.RegularExpressions;

namespace Backrest.Agent.Core.PgBackRest;

/// <summary>
/// pgBackRest's exit codes (its error.yaml, the same in 2.45 and 2.59) mapped to what a caller can do
/// about them, and the parser that keeps pgBackRest's own message and hint.
/// </summary>
public static partial class PgBackRestErrors
{
    public static AgentErrorKind KindOf(int exitCode) => exitCode switch
    {
        1 => AgentErrorKind.NotFound, // archive-get: segment not in the archive
        25 or 99 or 100 or 102 or 122 or 124 => AgentErrorKind.Internal,
        27 or 29 or 30 or 31 or 32 or 37 or 43 or 48 or 72 or 76 or 78 or 80 or 81 or 96 => AgentErrorKind.InvalidArgument,
        28 or 46 or 51 or 55 or 58 or 38 or 40 or 44 or 62 or 68 or 69 or 70 or 87 or 89 or 95 or 106 => AgentErrorKind.FailedPrecondition,
        // Files and paths: missing, unreadable, unwritable, disk full.
        41 or 42 or 47 or 52 or 53 or 54 or 60 or 61 or 64 or 74 or 79 or 83 or 88 or 93 or 97 or 98 => AgentErrorKind.FailedPrecondition,
        39 or 49 or 56 or 101 or 103 => AgentErrorKind.Unavailable,
        82 => AgentErrorKind.DeadlineExceeded,
        26 or 45 => AgentErrorKind.DataLoss,
        50 or 104 => AgentErrorKind.Aborted,
        57 => AgentErrorKind.Internal,
        63 => AgentErrorKind.Cancelled,
        67 => AgentErrorKind.Unimplemented,
        73 or 75 => AgentErrorKind.NotFound,
        105 => AgentErrorKind.PermissionDenied,
        _ => AgentErrorKind.Unknown,
    };

    /// <summary>What a person should do next, for the codes where the agent knows better than "see the log".</summary>
    public static string? NextStep(int exitCode) => exitCode switch
    {
        38 => "Stop PostgreSQL first (pg_ctl stop -m fast), or restore into a new data directory.",
        40 => "Restore with delta, or into an empty directory.",
        50 => "Another pgBackRest command holds the lock; wait for it to finish and try again.",
        55 or 28 => "Create the stanza (CreateStanza) or check that the repository belongs to this cluster.",
        56 => "Check that PostgreSQL is running and that the agent can reach its socket.",
        62 => "pgBackRest was stopped for this stanza: run `pgbackrest start` or remove the stop file.",
        68 or 87 => "Set archive_mode=on and archive_command to the agent's archive client, then reload PostgreSQL.",
        82 => "WAL is not reaching the repository: check archive status (GetStatus) and the repository.",
        41 or 42 or 47 or 52 or 53 or 54 or 60 or 61 or 64 or 74 or 79 or 83 or 88 or 93 or 97 or 98 =>
            "Check that the path exists, that the postgres user may read and write it, and that the disk is not full.",
        39 or 49 or 101 or 103 => "Check that the repository is reachable and its credentials are valid.",
        _ => null,
    };

    /// <summary>
    /// Builds the exception for a failed run from pgBackRest's stderr, where 2.45 writes
    /// <c>ERROR: [050]: message</c> and indented <c>HINT: ...</c> continuation lines.
    /// </summary>
    public static AgentException FromFailure(string command, int exitCode, string stderr)
    {
        var (message, hint) = ParseError(stderr);
        message ??= exitCode < 0
            ? $"pgbackrest {command} was killed by signal {-exitCode}."
            : $"pgbackrest {command} exited with code {exitCode}.";
        // pgBackRest reports io-timeout as a read or write error ("timeout after 10000ms waiting for read from ..."):
        // that is a slow or unreachable repository, not a broken path.
        var timedOut = exitCode is 42 or 64 && message.Contains("timeout", StringComparison.OrdinalIgnoreCase);
        var next = timedOut ? "Check that the repository is reachable and responding." : NextStep(exitCode);
        var fullHint = string.Join(" ", new[] { hint, next }.Where(s => !string.IsNullOrEmpty(s)));
        return new AgentException(timedOut ? AgentErrorKind.DeadlineExceeded : KindOf(exitCode), $"pgbackrest {command} failed [{exitCode}]: {message}",
            fullHint.Length == 0 ? null : fullHint, exitCode);
    }

    /// <summary>The last ERROR block's message (continuation lines joined) and its HINT lines.</summary>
    public static (string? Message, string? Hint) ParseError(string stderr)
    {
        var lines = stderr.Split('\n');
        var start = -1;
        for (var i = lines.Length - 1; i >= 0; i--)
        {
            if (ErrorLine().IsMatch(lines[i]))
            {
                start = i;
                break;
            }
        }

        if (start < 0)
        {
            var text = stderr.Trim();
            return (text.Length == 0 ? null : text, null);
        }

        var message = new StringBuilder(ErrorLine().Match(lines[start]).Groups[1].Value.Trim());
        var hint = new StringBuilder();
        for (var i = start + 1; i < lines.Length; i++)
        {
            var line = lines[i];
            if (line.Length == 0 || !char.IsWhiteSpace(line[0]))
            {
                break; // the next log line: the block ended
            }

            var trimmed = line.Trim();
            if (trimmed.StartsWith("HINT:", StringComparison.Ordinal))
            {
                hint.Append(hint.Length > 0 ? " " : "").Append(trimmed["HINT:".Length..].Trim());
            }
            else
            {
                message.Append(' ').Append(trimmed);
            }
        }

        return (message.ToString(), hint.Length == 0 ? null : hint.ToString());
    }

    /// <summary>pgBackRest's WARN messages (2.45 writes them to stderr), with their continuation lines.</summary>
    public static IEnumerable<string> Warnings(string stderr)
    {
        string? current = null;
        foreach (var line in stderr.Split('\n'))
        {
            if (line.StartsWith("WARN: ", StringComparison.Ordinal))
            {
                if (current is not null)
                {
                    yield return current;
                }

                current = line["WARN: ".Length..].Trim();
            }
            else if (current is not null && line.Length > 0 && char.IsWhiteSpace(line[0]))
            {
                current += " " + line.Trim();
            }
            else if (current is not null)
            {
                yield return current;
                current = null;
            }
        }

        if (current is not null)
        {
            yield return current;
        }
    }

    /// <summary>The repositories an error message names ("repo2: [HostConnectError] ...").</summary>
    public static IReadOnlySet<int> NamedRepositories(string stderr) =>
        RepoPrefix().Matches(stderr).Select(m => int.Parse(m.Groups[1].Value)).ToHashSet();

    [GeneratedRegex(@"\brepo(\d): \[")]
    private static partial Regex RepoPrefix();

    [GeneratedRegex(@"ERROR: \[\d{3}\]: (.*)$")]
    private static partial Regex ErrorLine();
}
