using System.Text.RegularExpressions;

namespace Backrest.Agent.Core.Configuration;

/// <summary>
/// Checks the whole configuration at once and names every bad key (<c>Agent:Repositories:0:Path</c>),
/// so a person fixes all of them in one go. Nothing invalid ever reaches pgbackrest.conf.
/// </summary>
public static partial class AgentOptionsValidator
{
    public const int MaxRepositories = 4;
    public const int MaxProcessMax = 64;

    /// <summary>Every error found; empty when the configuration is valid. Capabilities are optional
    /// so the static checks can run before the binary is probed.</summary>
    public static IReadOnlyList<string> Validate(AgentOptions options, PgBackRestCapabilities? capabilities = null)
    {
        var errors = new List<string>();
        const string root = AgentOptions.SectionName;

        if (string.IsNullOrWhiteSpace(options.Stanza))
        {
            errors.Add($"{root}:Stanza is required (the pgBackRest stanza name, e.g. 'main').");
        }
        else if (!StanzaPattern().IsMatch(options.Stanza))
        {
            errors.Add($"{root}:Stanza '{options.Stanza}' may only contain letters, digits, '-', '_' and '.'.");
        }

        var pg = options.Postgres;
        RequireAbsolute(errors, $"{root}:Postgres:DataDirectory", pg.DataDirectory);
        RequireAbsolute(errors, $"{root}:Postgres:SocketDirectory", pg.SocketDirectory);
        RequirePort(errors, $"{root}:Postgres:Port", pg.Port);
        RequireName(errors, $"{root}:Postgres:User", pg.User);
        RequireName(errors, $"{root}:Postgres:Database", pg.Database);
        RequireAbsolute(errors, $"{root}:Postgres:ArchiveClientPath", pg.ArchiveClientPath);

        var pgbr = options.PgBackRest;
        if (string.IsNullOrWhiteSpace(pgbr.Executable))
        {
            errors.Add($"{root}:PgBackRest:Executable is required (path or name of the pgbackrest binary).");
        }

        RequireAbsolute(errors, $"{root}:PgBackRest:ConfigPath", pgbr.ConfigPath);
        RequireAbsolute(errors, $"{root}:PgBackRest:LockPath", pgbr.LockPath);
        RequireAbsolute(errors, $"{root}:PgBackRest:LogPath", pgbr.LogPath);
        RequireAbsolute(errors, $"{root}:PgBackRest:SpoolPath", pgbr.SpoolPath,
            "put it on the volume shared with PostgreSQL so queued WAL survives a container restart");

        if (pgbr.ProcessMax is { } processMax && processMax is < 1 or > MaxProcessMax)
        {
            errors.Add($"{root}:PgBackRest:ProcessMax must be between 1 and {MaxProcessMax} (got {processMax}); leave it unset to use the container's CPU limit.");
        }

        if (pgbr.CompressType is { } compressType)
        {
            if (capabilities is not null && !capabilities.CompressTypes.Contains(compressType))
            {
                errors.Add($"{root}:PgBackRest:CompressType '{compressType}' is not supported by pgBackRest {capabilities.Version} here " +
                    $"(supported: {string.Join(", ", capabilities.CompressTypes.Order())}).");
            }
            else if (!KnownCompressTypes.ContainsKey(compressType))
            {
                errors.Add($"{root}:PgBackRest:CompressType '{compressType}' is unknown (use one of: {string.Join(", ", KnownCompressTypes.Keys)}).");
            }
        }

        if (pgbr.CompressLevel is { } level)
        {
            var type = pgbr.CompressType ?? (capabilities?.CompressTypes.Contains("zst") == true ? "zst" : "gz");
            if (KnownCompressTypes.TryGetValue(type, out var range) && (level < range.Min || level > range.Max))
            {
                errors.Add($"{root}:PgBackRest:CompressLevel {level} is out of range for compress type '{type}' ({range.Min}..{range.Max}).");
            }
        }

        RequirePositive(errors, $"{root}:PgBackRest:IoTimeoutSeconds", pgbr.IoTimeoutSeconds);
        RequirePositive(errors, $"{root}:PgBackRest:DbTimeoutSeconds", pgbr.DbTimeoutSeconds);
        RequirePositive(errors, $"{root}:PgBackRest:ArchiveTimeoutSeconds", pgbr.ArchiveTimeoutSeconds);
        RequirePositive(errors, $"{root}:PgBackRest:ArchiveCommandTimeoutSeconds", pgbr.ArchiveCommandTimeoutSeconds);
        if (pgbr.ArchiveCommandTimeoutSeconds <= pgbr.ArchiveTimeoutSeconds)
        {
            errors.Add($"{root}:PgBackRest:ArchiveCommandTimeoutSeconds ({pgbr.ArchiveCommandTimeoutSeconds}) must be larger than ArchiveTimeoutSeconds ({pgbr.ArchiveTimeoutSeconds}), or every slow async push is killed.");
        }

        if (pgbr.ArchivePushQueueMax is { } queueMax && !SizePattern().IsMatch(queueMax))
        {
            errors.Add($"{root}:PgBackRest:ArchivePushQueueMax '{queueMax}' is not a size like '4GiB' or '512MB'.");
        }

        ValidateRepositories(errors, options, pgbr);
        ValidateCluster(errors, options);

        var listen = options.Listen;
        RequirePort(errors, $"{root}:Listen:Port", listen.Port);
        RequirePort(errors, $"{root}:Listen:MetricsPort", listen.MetricsPort);
        if (listen.MetricsPort == listen.Port)
        {
            errors.Add($"{root}:Listen:MetricsPort must differ from {root}:Listen:Port ({listen.Port}).");
        }
        RequireAbsolute(errors, $"{root}:Listen:ArchiveSocket", listen.ArchiveSocket);
        ValidateSecurity(errors, options);

        var operations = options.Operations;
        if (operations.ShutdownGraceSeconds is < 0 or > 3600)
        {
            errors.Add($"{root}:Operations:ShutdownGraceSeconds must be between 0 and 3600 (got {operations.ShutdownGraceSeconds}); " +
                "keep it under the pod's terminationGracePeriodSeconds.");
        }

        if (operations.HistoryPath.Length > 0)
        {
            RequireAbsolute(errors, $"{root}:Operations:HistoryPath", operations.HistoryPath);
        }

        if (operations.MissedScheduleLimitMinutes < 0)
        {
            errors.Add($"{root}:Operations:MissedScheduleLimitMinutes must be 0 or more (got {operations.MissedScheduleLimitMinutes}); 0 never catches up.");
        }

        var drills = options.Drills;
        if (drills.ScratchDirectory.Length > 0)
        {
            RequireAbsolute(errors, $"{root}:Drills:ScratchDirectory", drills.ScratchDirectory);
        }
        else if (options.Repositories.Any(r => !string.IsNullOrWhiteSpace(r.Schedules.Drill)))
        {
            errors.Add($"{root}:Drills:ScratchDirectory is required by a Schedules:Drill: set it to a directory on a volume of its own.");
        }

        if (drills.PostgresBinDirectory is { Length: > 0 } bin)
        {
            RequireAbsolute(errors, $"{root}:Drills:PostgresBinDirectory", bin);
        }

        RequirePositive(errors, $"{root}:Drills:TimeoutMinutes", drills.TimeoutMinutes);
        RequirePositive(errors, $"{root}:Status:ContinuityIntervalSeconds", options.Status.ContinuityIntervalSeconds);

        return errors;
    }

    private static void ValidateRepositories(List<string> errors, AgentOptions options, PgBackRestOptions pgbr)
    {
        const string key = AgentOptions.SectionName + ":Repositories";
        if (options.Repositories.Count == 0)
        {
            errors.Add($"{key} needs at least one repository (e.g. {key}:0:Type=posix, {key}:0:Path=/var/lib/pgbackrest).");
            return;
        }

        if (options.Repositories.Count > MaxRepositories)
        {
            errors.Add($"{key} has {options.Repositories.Count} entries; pgBackRest supports at most {MaxRepositories}.");
        }

        for (var i = 0; i < options.Repositories.Count; i++)
        {
            var repo = options.Repositories[i];
            var at = Repositories.RepositoryKind.KeyOf(i);
            if (Repositories.RepositoryKind.Find(repo.Type) is not { } kind)
            {
                errors.Add($"{at}:Type '{repo.Type}' is unknown (use {string.Join(", ", Repositories.RepositoryKind.All.Select(k => k.Type))}).");
                continue;
            }

            kind.Validate(repo, at, pgbr.BlockIncremental == true, errors);
            Schedules.BackupSchedule.Validate(errors, $"{at}:Schedules", repo.Schedules);
        }

        const string status = AgentOptions.SectionName + ":Status";
        RequirePositive(errors, $"{status}:IntervalSeconds", options.Status.IntervalSeconds);
        RequirePositive(errors, $"{status}:ProbeTimeoutSeconds", options.Status.ProbeTimeoutSeconds);
        RequirePositive(errors, $"{status}:InfoTimeoutSeconds", options.Status.InfoTimeoutSeconds);
        RequirePositive(errors, $"{status}:SampleIntervalSeconds", options.Status.SampleIntervalSeconds);
    }

    /// <summary>
    /// A posix repository is a directory one pod mounts: after a failover the new primary's agent would back up and
    /// archive into its own, different directory, and the WAL history would split. With several instances it is served
    /// only when the operator says it is a volume every pod mounts (Shared); object storage needs nothing.
    /// </summary>
    private static void ValidateCluster(List<string> errors, AgentOptions options)
    {
        const string key = AgentOptions.SectionName + ":Cluster";
        var cluster = options.Cluster;
        if (cluster.Instances < 1)
        {
            errors.Add($"{key}:Instances must be at least 1 (got {cluster.Instances}): the number of PostgreSQL instances (pods) of the cluster.");
        }

        if (cluster.BackupFrom is not ("primary" or "standby"))
        {
            errors.Add($"{key}:BackupFrom '{cluster.BackupFrom}' is unknown (use primary, or standby on the one agent that backs up from its standby).");
        }

        // pgBackRest's own backup lock is a file local to each pod: across pods only the lease keeps backups apart.
        if (!cluster.BackupLease && cluster.Instances > 1)
        {
            errors.Add($"{key}:BackupLease is false but {key}:Instances is {cluster.Instances}: without the lease two agents (a failover caught " +
                "half-way, two schedules) can write one repository at once. Remove the setting (it is on by default), or run one instance.");
        }

        if (cluster.LeaseSeconds is < 10 or > 3600)
        {
            errors.Add($"{key}:LeaseSeconds must be between 10 and 3600 (got {cluster.LeaseSeconds}).");
        }

        if (cluster.Member.Length > 0 && !NamePattern().IsMatch(cluster.Member.Replace(".", "", StringComparison.Ordinal)))
        {
            errors.Add($"{key}:Member '{cluster.Member}' may only contain letters, digits, '-', '_' and '.'.");
        }

        var server = cluster.TlsServer;
        if (server.Port is { } serverPort)
        {
            RequirePort(errors, $"{key}:TlsServer:Port", serverPort);
            foreach (var (name, value) in new[] { ("CertificateFile", server.CertificateFile), ("KeyFile", server.KeyFile), ("CaFile", server.CaFile) })
            {
                RequireAbsolute(errors, $"{key}:TlsServer:{name}", value, "pgbackrest server speaks mutual TLS only");
            }

            if (server.ClientNames.Count == 0 || server.ClientNames.Any(n => !NamePattern().IsMatch(n.Replace(".", "", StringComparison.Ordinal))))
            {
                errors.Add($"{key}:TlsServer:ClientNames must list the client certificates' common names (letters, digits, '-', '_', '.').");
            }
        }

        if (cluster.BackupFrom == "standby")
        {
            var primary = cluster.Primary;
            if (string.IsNullOrWhiteSpace(primary.Host) || Uri.CheckHostName(primary.Host) == UriHostNameType.Unknown)
            {
                errors.Add($"{key}:Primary:Host is required with {key}:BackupFrom=standby: a name that reaches the primary's pgBackRest TLS server " +
                    "(e.g. a Service selecting the primary pod) and that its certificate carries.");
            }

            RequirePort(errors, $"{key}:Primary:Port", primary.Port);
            foreach (var (name, value) in new[] { ("CertificateFile", primary.CertificateFile), ("KeyFile", primary.KeyFile), ("CaFile", primary.CaFile) })
            {
                RequireAbsolute(errors, $"{key}:Primary:{name}", value, $"required with {key}:BackupFrom=standby (mutual TLS to the primary's server)");
            }

            if (primary.DataDirectory is { } data)
            {
                RequireAbsolute(errors, $"{key}:Primary:DataDirectory", data);
            }

            if (primary.SocketDirectory is { } socket)
            {
                RequireAbsolute(errors, $"{key}:Primary:SocketDirectory", socket);
            }

            if (primary.PostgresPort is { } pgPort)
            {
                RequirePort(errors, $"{key}:Primary:PostgresPort", pgPort);
            }
        }

        for (var i = 0; i < options.Repositories.Count; i++)
        {
            var repo = options.Repositories[i];
            if (repo.Shared && repo.Type != "posix")
            {
                errors.Add($"{Repositories.RepositoryKind.KeyOf(i)}:Shared applies to posix repositories only (an object store is shared by nature).");
            }
            else if (repo.Type == "posix" && cluster.Instances > 1 && !repo.Shared)
            {
                errors.Add($"{Repositories.RepositoryKind.KeyOf(i)}:Shared must be true for a posix repository when {key}:Instances is {cluster.Instances}: " +
                    "a volume one pod mounts does not follow a failover. Mount one ReadWriteMany volume at this path in every pod and set Shared=true, " +
                    "or use an object store (s3, gcs, azure).");
            }
        }
    }

    private static void ValidateSecurity(List<string> errors, AgentOptions options)
    {
        const string tls = AgentOptions.SectionName + ":Tls";
        var t = options.Tls;
        foreach (var (name, value) in new[] { ("CertificateFile", t.CertificateFile), ("KeyFile", t.KeyFile), ("ClientCaFile", t.ClientCaFile) })
        {
            if (value is not null)
            {
                RequireAbsolute(errors, $"{tls}:{name}", value);
            }
        }

        var tlsOn = t.CertificateFile is not null || t.KeyFile is not null;
        if (tlsOn && (t.CertificateFile is null || t.KeyFile is null))
        {
            errors.Add($"{tls}:CertificateFile and {tls}:KeyFile go together: set both (PEM files, e.g. tls.crt and tls.key of a Kubernetes TLS Secret).");
        }

        if (t.ClientCaFile is not null && !tlsOn)
        {
            errors.Add($"{tls}:ClientCaFile needs {tls}:CertificateFile and {tls}:KeyFile: client certificates are checked only over TLS.");
        }

        if (t.Metrics && !tlsOn)
        {
            errors.Add($"{tls}:Metrics needs {tls}:CertificateFile and {tls}:KeyFile.");
        }

        if (!System.Net.IPAddress.TryParse(options.Listen.Address, out var address))
        {
            errors.Add($"{AgentOptions.SectionName}:Listen:Address '{options.Listen.Address}' is not an IP address (e.g. 127.0.0.1, or 0.0.0.0 for every interface).");
        }
        else if (!tlsOn && !t.AllowPlaintext && !System.Net.IPAddress.IsLoopback(address))
        {
            errors.Add($"{AgentOptions.SectionName}:Listen:Address {options.Listen.Address} is reachable from other hosts, and the control port would be cleartext: " +
                $"set {tls}:CertificateFile and {tls}:KeyFile, or {tls}:AllowPlaintext=true for local development.");
        }

        const string auth = AgentOptions.SectionName + ":Auth";
        if (options.Auth.TokensFile is { } tokens)
        {
            RequireAbsolute(errors, $"{auth}:TokensFile", tokens);
        }

        foreach (var (identity, role) in options.Auth.CertificateRoles)
        {
            if (role is not ("viewer" or "operator"))
            {
                errors.Add($"{auth}:CertificateRoles:{identity} '{role}' is not a role (use viewer or operator).");
            }
        }

        if (options.Auth.CertificateRoles.Count > 0 && t.ClientCaFile is null)
        {
            errors.Add($"{auth}:CertificateRoles needs {tls}:ClientCaFile: without it no client certificate is asked for.");
        }
    }

    private static void RequireAbsolute(List<string> errors, string key, string? value, string? why = null)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            errors.Add($"{key} is required" + (why is null ? "." : $": {why}."));
        }
        else if (!value.StartsWith('/'))
        {
            errors.Add($"{key} '{value}' must be an absolute path.");
        }
        else if (value.IndexOfAny(['\n', '\r', '\0']) >= 0)
        {
            errors.Add($"{key} must not contain line breaks.");
        }
    }

    private static void RequireName(List<string> errors, string key, string value)
    {
        if (string.IsNullOrWhiteSpace(value) || !NamePattern().IsMatch(value))
        {
            errors.Add($"{key} '{value}' must be a plain PostgreSQL name (letters, digits, '_', '-').");
        }
    }

    private static void RequirePort(List<string> errors, string key, int port)
    {
        if (port is < 1 or > 65535)
        {
            errors.Add($"{key} must be between 1 and 65535 (got {port}).");
        }
    }

    private static void RequirePositive(List<string> errors, string key, int value)
    {
        if (value < 1)
        {
            errors.Add($"{key} must be at least 1 (got {value}).");
        }
    }

    /// <summary>pgBackRest's compression types and their level ranges.</summary>
    internal static readonly Dictionary<string, (int Min, int Max)> KnownCompressTypes = new()
    {
        ["none"] = (0, 0),
        ["bz2"] = (1, 9),
        ["gz"] = (0, 9),
        ["lz4"] = (-5, 12),
        ["zst"] = (-7, 22),
    };

    [GeneratedRegex(@"^[A-Za-z0-9_.-]+\z")]
    private static partial Regex StanzaPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_-]+\z")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^[0-9]+(\.[0-9]+)? *(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB|PB|PiB)?\z", RegexOptions.IgnoreCase)]
    private static partial Regex SizePattern();
}
