using System.Text.RegularExpressions;

namespace Backrest.Agent.Core.Configuration;

/// <summary>What the installed pgBackRest binary can do, read once at start-up.</summary>
public sealed record PgBackRestCapabilities(Version Version, IReadOnlySet<string> CompressTypes)
{
    /// <summary>Block incremental is GA from 2.46; 2.45 has it only behind <c>beta=y</c>.</summary>
    public bool BlockIncrementalStable => Version >= new Version(2, 46);

    public bool BlockIncrementalBeta => Version >= new Version(2, 44) && !BlockIncrementalStable;

    /// <summary>From 2.53 WARN/ERROR go to stdout unless log-level-stderr is set; we always set it.</summary>
    public bool RefusesRoot => Version >= new Version(2, 59);

    /// <summary>Parses <c>pgbackrest version</c> ("pgBackRest 2.45") and <c>help backup compress-type</c>.</summary>
    public static PgBackRestCapabilities Parse(string versionOutput, string compressTypeHelp)
    {
        var match = Regex.Match(versionOutput, @"pgBackRest\s+(\d+)\.(\d+)(?:\.(\d+))?");
        if (!match.Success)
        {
            throw new FormatException($"Unrecognised `pgbackrest version` output: '{versionOutput.Trim()}'.");
        }

        var version = new Version(
            int.Parse(match.Groups[1].Value),
            int.Parse(match.Groups[2].Value),
            match.Groups[3].Success ? int.Parse(match.Groups[3].Value) : 0);

        // Help lists "* zst - Zstandard compression format"; builds without a library omit it.
        var types = Regex.Matches(compressTypeHelp, @"^\*\s+([a-z0-9]+)\s+-", RegexOptions.Multiline)
            .Select(m => m.Groups[1].Value)
            .ToHashSet(StringComparer.Ordinal);
        if (types.Count == 0)
        {
            types = ["none", "gz"];
        }

        return new PgBackRestCapabilities(version, types);
    }
}
