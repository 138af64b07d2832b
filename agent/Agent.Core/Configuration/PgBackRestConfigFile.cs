namespace Backrest.Agent.Core.Configuration;

/// <summary>
/// Keeps pgbackrest.conf current: rendered again before every pgBackRest run and rewritten when it changed, which it does
/// when a mounted secret file was rotated. So the next pgBackRest call uses the new secret, without a restart.
/// </summary>
public sealed class PgBackRestConfigFile(AgentOptions options, AgentRuntime runtime)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, string> _written = [];

    /// <summary>The path of the whole configuration, current.</summary>
    public string EnsureCurrent() => Ensure(options.PgBackRest.ConfigPath, null);

    /// <summary>
    /// A configuration holding only repository <paramref name="repo"/> (beside the main file, 0600): for commands that
    /// pgBackRest cannot restrict with --repo, such as check.
    /// </summary>
    public string EnsureCurrentFor(int repo) => Ensure($"{options.PgBackRest.ConfigPath}.repo{repo}", repo);

    private string Ensure(string path, int? repo)
    {
        var text = PgBackRestConfig.Render(options, runtime.Settings, repo);
        lock (_gate)
        {
            if (!_written.TryGetValue(path, out var written) || written != text || !File.Exists(path))
            {
                PgBackRestConfig.Write(path, text);
                _written[path] = text;
            }
        }

        return path;
    }
}
