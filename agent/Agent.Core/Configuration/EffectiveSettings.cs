namespace Backrest.Agent.Core.Configuration;

public enum SettingSource
{
    Default,
    Configured,
}

public sealed record EffectiveSetting(string Key, string Value, SettingSource Source);

/// <summary>
/// The pgBackRest settings the agent decides (compression, parallelism, block incremental),
/// each with where it came from. Rendered into pgbackrest.conf and shown in GetStatus.
/// </summary>
public sealed record EffectiveSettings(
    EffectiveSetting CompressType,
    EffectiveSetting CompressLevel,
    EffectiveSetting ProcessMax,
    EffectiveSetting BlockIncremental,
    bool BlockIncrementalNeedsBeta,
    IReadOnlyList<string> Warnings)
{
    public IEnumerable<EffectiveSetting> All => [CompressType, CompressLevel, ProcessMax, BlockIncremental];

    public bool BlockIncrementalOn => BlockIncremental.Value == "y";

    /// <summary>
    /// pgBackRest's own defaults (gz level 6, one process) cannot keep up with a busy primary's WAL
    /// and make backups several times slower; zst level 1 with all allowed CPUs can.
    /// </summary>
    public static EffectiveSettings Resolve(PgBackRestOptions options, PgBackRestCapabilities capabilities, int cpuLimit)
    {
        var warnings = new List<string>();

        EffectiveSetting compressType;
        EffectiveSetting compressLevel;
        if (options.CompressType is { } configuredType)
        {
            compressType = new("compress-type", configuredType, SettingSource.Configured);
            compressLevel = options.CompressLevel is { } level
                ? new("compress-level", level.ToString(), SettingSource.Configured)
                : new("compress-level", DefaultLevel(configuredType), SettingSource.Default);
        }
        else
        {
            var type = capabilities.CompressTypes.Contains("zst") ? "zst"
                : capabilities.CompressTypes.Contains("lz4") ? "lz4"
                : "gz";
            compressType = new("compress-type", type, SettingSource.Default);
            compressLevel = options.CompressLevel is { } level
                ? new("compress-level", level.ToString(), SettingSource.Configured)
                : new("compress-level", DefaultLevel(type), SettingSource.Default);
        }

        var processMax = options.ProcessMax is { } configuredMax
            ? new EffectiveSetting("process-max", configuredMax.ToString(), SettingSource.Configured)
            : new EffectiveSetting("process-max", Math.Max(1, cpuLimit).ToString(), SettingSource.Default);

        EffectiveSetting block;
        if (options.BlockIncremental is { } configuredBlock)
        {
            block = new("repo-block", configuredBlock ? "y" : "n", SettingSource.Configured);
            if (configuredBlock && !capabilities.BlockIncrementalStable)
            {
                warnings.Add($"Block incremental is enabled on pgBackRest {capabilities.Version}, where it is a beta feature " +
                    "(beta=y is set): upgrade pgBackRest to 2.46 or later before relying on it in production.");
            }
        }
        else
        {
            block = new("repo-block", capabilities.BlockIncrementalStable ? "y" : "n", SettingSource.Default);
        }

        var needsBeta = block.Value == "y" && !capabilities.BlockIncrementalStable;
        return new EffectiveSettings(compressType, compressLevel, processMax, block, needsBeta, warnings);
    }

    // Level 1 is where zst and lz4 are fast enough to keep up with WAL; gz keeps pgBackRest's 6.
    private static string DefaultLevel(string type) => type switch
    {
        "zst" => "1",
        "lz4" => "1",
        "gz" => "6",
        "bz2" => "9",
        _ => "0",
    };
}
