using System.Text;

namespace Backrest.Agent.Core.Configuration;

/// <summary>
/// Renders the only pgbackrest.conf pgBackRest sees, from the validated options and the settings the
/// agent resolved. Secrets go in this file (mode 0600), never on a command line.
/// </summary>
public static class PgBackRestConfig
{
    public static string Render(AgentOptions options, EffectiveSettings settings)
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
            global.AddRange(RepositoryLines(i + 1, options.Repositories[i], settings));
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

    private static IEnumerable<(string, string)> RepositoryLines(int key, RepositoryOptions repo, EffectiveSettings settings)
    {
        var p = $"repo{key}-";
        yield return (p + "type", repo.Type);
        yield return (p + "path", repo.Path);
        foreach (var line in Retention.RetentionPolicy.ConfigLines(key, repo))
        {
            yield return line;
        }

        if (settings.BlockIncrementalOn)
        {
            yield return (p + "bundle", "y");
            yield return (p + "block", "y");
        }
        else if (repo.Bundle is { } bundle)
        {
            yield return (p + "bundle", bundle ? "y" : "n");
        }

        switch (repo.Type)
        {
            case "s3" when repo.S3 is { } s3:
                yield return (p + "s3-bucket", s3.Bucket);
                yield return (p + "s3-endpoint", s3.Endpoint);
                yield return (p + "s3-region", s3.Region);
                yield return (p + "s3-uri-style", s3.UriStyle);
                if (s3.Key is not null)
                {
                    yield return (p + "s3-key", s3.Key);
                }

                if (s3.KeySecret is not null)
                {
                    yield return (p + "s3-key-secret", s3.KeySecret);
                }

                if (s3.Port is { } s3Port)
                {
                    yield return (p + "storage-port", s3Port.ToString());
                }

                yield return (p + "storage-verify-tls", s3.VerifyTls ? "y" : "n");
                break;
            case "gcs" when repo.Gcs is { } gcs:
                yield return (p + "gcs-bucket", gcs.Bucket);
                yield return (p + "gcs-key-type", gcs.KeyType);
                if (gcs.Endpoint is not null)
                {
                    yield return (p + "gcs-endpoint", gcs.Endpoint);
                }

                if (gcs.Key is not null)
                {
                    yield return (p + "gcs-key", gcs.Key);
                }

                yield return (p + "storage-verify-tls", gcs.VerifyTls ? "y" : "n");
                break;
            case "azure" when repo.Azure is { } az:
                yield return (p + "azure-account", az.Account);
                yield return (p + "azure-container", az.Container);
                yield return (p + "azure-key-type", az.KeyType);
                yield return (p + "azure-uri-style", az.UriStyle);
                if (az.Key is not null)
                {
                    yield return (p + "azure-key", az.Key);
                }

                if (az.Endpoint is not null)
                {
                    yield return (p + "azure-endpoint", az.Endpoint);
                }

                if (az.Port is { } azPort)
                {
                    yield return (p + "storage-port", azPort.ToString());
                }

                yield return (p + "storage-verify-tls", az.VerifyTls ? "y" : "n");
                break;
        }
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
