using Backrest.Agent.Core.PgBackRest;

namespace Backrest.Agent.Core.Configuration;

/// <summary>Raised at start-up with every configuration error, each naming its key.</summary>
public sealed class ConfigurationException(IReadOnlyList<string> errors)
    : Exception("Invalid configuration:\n  - " + string.Join("\n  - ", errors))
{
    public IReadOnlyList<string> Errors { get; } = errors;
}

/// <summary>What start-up learned: the binary's capabilities and the settings chosen from them.</summary>
public sealed record AgentRuntime(PgBackRestCapabilities Capabilities, EffectiveSettings Settings, int CpuLimit);

public static class AgentSetup
{
    /// <summary>
    /// Validates the options, probes pgBackRest, resolves the defaults and writes pgbackrest.conf.
    /// Throws <see cref="ConfigurationException"/> listing every error.
    /// </summary>
    public static async Task<AgentRuntime> PrepareAsync(AgentOptions options, IProcessRunner runner, CancellationToken cancellationToken)
    {
        var errors = AgentOptionsValidator.Validate(options);
        if (errors.Count > 0)
        {
            throw new ConfigurationException(errors);
        }

        PgBackRestCapabilities capabilities;
        try
        {
            capabilities = await PgBackRestClient.ProbeAsync(runner, options.PgBackRest.Executable, cancellationToken).ConfigureAwait(false);
        }
        catch (AgentException ex)
        {
            throw new ConfigurationException([$"Agent:PgBackRest:Executable: {ex.Message} {ex.Hint}".Trim()]);
        }

        errors = AgentOptionsValidator.Validate(options, capabilities);
        if (errors.Count > 0)
        {
            throw new ConfigurationException(errors);
        }

        var cpuLimit = CpuLimit.Detect();
        var settings = EffectiveSettings.Resolve(options.PgBackRest, capabilities, cpuLimit);
        settings = settings with { Warnings = [.. settings.Warnings, .. Retention.RetentionPolicy.Warnings(options)] };
        foreach (var path in new[] { options.PgBackRest.LogPath, options.PgBackRest.LockPath, options.PgBackRest.SpoolPath })
        {
            Directory.CreateDirectory(path);
        }

        PgBackRestConfig.Write(options.PgBackRest.ConfigPath, PgBackRestConfig.Render(options, settings));
        return new AgentRuntime(capabilities, settings, cpuLimit);
    }
}
