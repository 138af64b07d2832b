using System.Text;
using Backrest.Agent.Core.Repositories;

namespace Backrest.Agent.Core.Configuration;

/// <summary>
/// Renders the only pgbackrest.conf pgBackRest sees, from the validated options and the settings the
/// agent resolved. Secrets go in this file (mode 0600), never on a command line.
/// </summary>
public static class PgBackRestConfig
{
    /// <summary>
    /// The whole file; with <paramref name="onlyRepo"/>, a file that configures that repository alone (per-repository
    /// <c>check</c>, which pgBackRest cannot restrict with --repo). Secrets are read from their files now.
    /// </summary>
    public static string Render(AgentOptions options, EffectiveSettings settings, int? onlyRepo = null)
    {
        var pgbr = options.PgBackRest;
        var global = new List<(string Key, string Value)>
        {
            ("log-path", pgbr.LogPath),
            ("lock-path", pgbr.LockPath),
            ("spool-path", pgbr.SpoolPath),
            ("log-level-file", "info"),
            ("start-fast", "y"),
            ("compress-type", settings.CompressType.Value),
            ("process-max", settings.ProcessMax.Value),
            ("io-timeout", pgbr.IoTimeoutSeconds.ToString()),
            ("db-timeout", pgbr.DbTimeoutSeconds.ToString()),
            // pgBackRest requires protocol-timeout > db-timeout.
            ("protocol-timeout", (pgbr.DbTimeoutSeconds + 30).ToString()),
            ("archive-async", pgbr.ArchiveAsync ? "y" : "n"),
            ("archive-timeout", pgbr.ArchiveTimeoutSeconds.ToString()),
        };

        if (settings.CompressType.Value != "none")
        {
            global.Add(("compress-level", settings.CompressLevel.Value));
        }

        if (pgbr.ArchivePushQueueMax is { } queueMax)
        {
            global.Add(("archive-push-queue-max", queueMax));
        }

        if (settings.BlockIncrementalNeedsBeta)
        {
            global.Add(("beta", "y"));
        }

        for (var i = 0; i < options.Repositories.Count; i++)
        {
            if (onlyRepo is null || onlyRepo == i + 1)
            {
                var repo = options.Repositories[i];
                global.AddRange(RepositoryKind.Of(repo).ConfLines(i + 1, repo, RepositoryKind.KeyOf(i), settings.BlockIncrementalOn));
            }
        }

        var pg = options.Postgres;
        var stanza = new List<(string Key, string Value)>
        {
            ("pg1-path", pg.DataDirectory),
            ("pg1-port", pg.Port.ToString()),
            ("pg1-socket-path", pg.SocketDirectory),
            ("pg1-user", pg.User),
            ("pg1-database", pg.Database),
        };

        var text = new StringBuilder();
        text.AppendLine("# Rendered by backrest-agent from its configuration. Do not edit: changes are overwritten at start-up.");
        AppendSection(text, "global", global);
        text.AppendLine();
        AppendSection(text, options.Stanza, stanza);
        return text.ToString();
    }

    /// <summary>Writes the file with mode 0600 before any content lands in it, so secrets are never world-readable.</summary>
    public static void Write(string path, string content)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var temp = path + ".tmp";
        using (var stream = new FileStream(temp, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            stream.Write(Encoding.UTF8.GetBytes(content));
        }

        File.Move(temp, path, overwrite: true);
    }

    private static void AppendSection(StringBuilder text, string name, List<(string Key, string Value)> lines)
    {
        text.Append('[').Append(name).AppendLine("]");
        foreach (var (key, value) in lines)
        {
            // Validation already refuses line breaks; this guards the file format itself.
            if (value.IndexOfAny(['\n', '\r']) >= 0)
            {
                throw new ArgumentException($"Value of '{key}' contains a line break.");
            }

            text.Append(key).Append('=').AppendLine(value);
        }
    }
}
