namespace Backrest.Agent.Core.Configuration;

/// <summary>
/// The agent's whole configuration, bound from the "Agent" section (appsettings, environment
/// variables such as <c>Agent__Stanza</c>, or command-line flags such as <c>--Agent:Stanza=demo</c>).
/// It is the only source of the <c>pgbackrest.conf</c> the agent renders.
/// </summary>
public sealed class AgentOptions
{
    public const string SectionName = "Agent";

    public string Stanza { get; set; } = "";

    public PostgresOptions Postgres { get; set; } = new();

    public PgBackRestOptions PgBackRest { get; set; } = new();

    /// <summary>Repositories 1..4, in order: the list index + 1 is pgBackRest's repo key.</summary>
    public List<RepositoryOptions> Repositories { get; set; } = [];

    public ListenOptions Listen { get; set; } = new();

    public OperationsOptions Operations { get; set; } = new();

    public TlsOptions Tls { get; set; } = new();

    public AuthOptions Auth { get; set; } = new();

    public StatusOptions Status { get; set; } = new();

    public ClusterOptions Cluster { get; set; } = new();

    public DrillOptions Drills { get; set; } = new();
}

/// <summary>Restore drills: the newest backup restored into a scratch directory and started there, then removed.</summary>
public sealed class DrillOptions
{
    /// <summary>
    /// A directory on a volume of its own (never the data directory's): each drill restores into a subdirectory and
    /// removes it. Unset: drills are refused.
    /// </summary>
    public string ScratchDirectory { get; set; } = "";

    /// <summary>The query run on the restored cluster; its first row is the drill's check result. Unset: tables and database sizes.</summary>
    public string? CheckQuery { get; set; }

    /// <summary>Where pg_ctl of the backup's PostgreSQL major version is; unset: /usr/lib/postgresql/&lt;major&gt;/bin.</summary>
    public string? PostgresBinDirectory { get; set; }

    /// <summary>How long the restored cluster may take to replay the archive and open.</summary>
    public int TimeoutMinutes { get; set; } = 60;
}

/// <summary>
/// This agent as one of several beside the instances of one PostgreSQL cluster (one agent per pod). See README,
/// "One cluster, many agents".
/// </summary>
public sealed class ClusterOptions
{
    /// <summary>This agent's name in refusals, leases and backrestctl's cluster view; empty: the host name (the pod's name).</summary>
    public string Member { get; set; } = "";

    /// <summary>How many PostgreSQL instances (pods) the cluster has: with more than one, a posix repository must be Shared.</summary>
    public int Instances { get; set; } = 1;

    /// <summary>
    /// primary (default): this agent backs up only while its PostgreSQL is the primary. standby: it also backs up while
    /// its PostgreSQL is a standby (it is the cluster's configured backup source).
    /// </summary>
    public string BackupFrom { get; set; } = "primary";

    /// <summary>
    /// Before a backup the agent writes a lease object into the repository (create-if-absent), so two agents that both
    /// believe they should back up (failover, split brain, two schedules) never write one repository at once.
    /// </summary>
    public bool BackupLease { get; set; } = true;

    /// <summary>How long a lease holds without renewal: a holder that dies frees the repository after this (renewed every third).</summary>
    public int LeaseSeconds { get; set; } = 60;

    public string ResolveMember() => Member.Length > 0 ? Member : Environment.MachineName;

    /// <summary>
    /// pgBackRest's TLS server (<c>pgbackrest server</c>), run and supervised by this agent, through which the backup
    /// source's agent on a standby reaches this pod's PostgreSQL while it is the primary. Off while Port is unset.
    /// </summary>
    public TlsServerOptions TlsServer { get; set; } = new();

    /// <summary>How the backup source (BackupFrom=standby) reaches the primary's pgBackRest TLS server.</summary>
    public PrimaryServerOptions Primary { get; set; } = new();
}

public sealed class TlsServerOptions
{
    /// <summary>The port <c>pgbackrest server</c> listens on (pgBackRest's default is 8432); unset: no server.</summary>
    public int? Port { get; set; }

    public string Address { get; set; } = "0.0.0.0";

    /// <summary>PEM server certificate; pgBackRest 2.45 clients match its DNS names only (give the Service's name as a DNS SAN).</summary>
    public string? CertificateFile { get; set; }

    public string? KeyFile { get; set; }

    /// <summary>PEM CA that signs the clients' certificates (mutual TLS: every client must present one).</summary>
    public string? CaFile { get; set; }

    /// <summary>The client certificates' common names allowed to use this stanza (tls-server-auth).</summary>
    public List<string> ClientNames { get; set; } = ["backrest-agent"];
}

public sealed class PrimaryServerOptions
{
    /// <summary>A name that always reaches the primary's TLS server (a Service selecting the primary pod) and that its certificate carries.</summary>
    public string? Host { get; set; }

    public int Port { get; set; } = 8432;

    /// <summary>PEM client certificate, its key, and the CA that signs the server's certificate.</summary>
    public string? CertificateFile { get; set; }

    public string? KeyFile { get; set; }

    public string? CaFile { get; set; }

    /// <summary>The primary's data directory, PostgreSQL port and socket directory; unset: the same as this pod's (Agent:Postgres).</summary>
    public string? DataDirectory { get; set; }

    public int? PostgresPort { get; set; }

    public string? SocketDirectory { get; set; }
}

/// <summary>How the agent runs its long operations (backups, restores, expires, deletes) and remembers them.</summary>
public sealed class OperationsOptions
{
    /// <summary>
    /// How long stopping the agent (SIGTERM) may take: the running pgBackRest command gets this minus 10 s to finish,
    /// then SIGTERM and 10 s before it is killed. Keep it under the pod's terminationGracePeriodSeconds (30 by default).
    /// </summary>
    public int ShutdownGraceSeconds { get; set; } = 25;

    /// <summary>The operation history file; empty: agent-operations.json in the spool path (a volume that survives restarts).</summary>
    public string HistoryPath { get; set; } = "";

    /// <summary>A schedule missed while the agent was down runs once at start-up if it is overdue by less than this.</summary>
    public int MissedScheduleLimitMinutes { get; set; } = 60;

    public string ResolveHistoryPath(PgBackRestOptions pgBackRest) =>
        HistoryPath.Length > 0 ? HistoryPath : System.IO.Path.Combine(pgBackRest.SpoolPath, "agent-operations.json");
}

/// <summary>The status cache: how often it probes the repositories and reads pgBackRest info, and how long each may take.</summary>
public sealed class StatusOptions
{
    /// <summary>Seconds between two refreshes; a dead repository is named in status within one interval.</summary>
    public int IntervalSeconds { get; set; } = 30;

    /// <summary>How long one reachability probe (list one object) may take before it counts as a timeout.</summary>
    public int ProbeTimeoutSeconds { get; set; } = 5;

    /// <summary>How long one <c>pgbackrest info --repo=N</c> may run before it is stopped (a dead repository blocks it).</summary>
    public int InfoTimeoutSeconds { get; set; } = 30;

    /// <summary>
    /// How often the refresh loop lists each repository's archive for gaps (repo-ls: one listing of every segment). A
    /// new oldest or newest backup, a status refresh and a check list it at once.
    /// </summary>
    public int ContinuityIntervalSeconds { get; set; } = 300;

    /// <summary>
    /// How often the WAL backlog (pg_wal/archive_status), pg_stat_archiver, the async archiver's error files and the pg_wal
    /// volume are sampled for metrics and the volume forecast: a scrape reads the last sample and never waits for them.
    /// </summary>
    public int SampleIntervalSeconds { get; set; } = 5;
}

public sealed class PostgresOptions
{
    public string DataDirectory { get; set; } = "";

    public string SocketDirectory { get; set; } = "/var/run/postgresql";

    public int Port { get; set; } = 5432;

    public string User { get; set; } = "postgres";

    public string Database { get; set; } = "postgres";

    /// <summary>
    /// The archive client's path as the PostgreSQL container sees it: restores write it into
    /// restore_command, since that container has no pgBackRest.
    /// </summary>
    public string ArchiveClientPath { get; set; } = "/var/run/backrest-agent/pgbackrest-archive";
}

public sealed class PgBackRestOptions
{
    public string Executable { get; set; } = "pgbackrest";

    /// <summary>Where the agent writes the rendered pgbackrest.conf (mode 0600).</summary>
    public string ConfigPath { get; set; } = "/tmp/backrest-agent/pgbackrest.conf";

    public string LockPath { get; set; } = "/tmp/pgbackrest";

    public string LogPath { get; set; } = "/tmp/backrest-agent/log";

    /// <summary>Async archiving's spool: must live on a volume that survives a container restart.</summary>
    public string SpoolPath { get; set; } = "";

    /// <summary>Null: the agent picks the CPUs the container may use.</summary>
    public int? ProcessMax { get; set; }

    /// <summary>Null: zst if the installed pgBackRest supports it, else lz4, else gz.</summary>
    public string? CompressType { get; set; }

    public int? CompressLevel { get; set; }

    /// <summary>Seconds; low so that a dead remote repository fails a WAL push in seconds, not minutes.</summary>
    public int IoTimeoutSeconds { get; set; } = 10;

    public int DbTimeoutSeconds { get; set; } = 1800;

    /// <summary>How long an async archive-push waits for its segment (pgBackRest's archive-timeout).</summary>
    public int ArchiveTimeoutSeconds { get; set; } = 60;

    /// <summary>Off by default: when set, pgBackRest DROPS WAL once the queue exceeds it (exit 0).</summary>
    public string? ArchivePushQueueMax { get; set; }

    public bool ArchiveAsync { get; set; } = true;

    /// <summary>Null: on where the installed pgBackRest has it as a stable feature (2.46+).</summary>
    public bool? BlockIncremental { get; set; }

    /// <summary>How long the agent lets one archive-push or archive-get run before it kills it.</summary>
    public int ArchiveCommandTimeoutSeconds { get; set; } = 120;
}

public sealed class RepositoryOptions
{
    /// <summary>posix, s3, gcs or azure.</summary>
    public string Type { get; set; } = "posix";

    /// <summary>For posix the directory; for object stores the prefix inside the bucket/container.</summary>
    public string Path { get; set; } = "";

    public int? RetentionFull { get; set; }

    public int? RetentionDiff { get; set; }

    /// <summary>count (RetentionFull backups, pgBackRest's default) or time (RetentionFull days).</summary>
    public string? RetentionFullType { get; set; }

    /// <summary>How many backups keep their WAL for point-in-time recovery (unset: WAL of every retained backup).</summary>
    public int? RetentionArchive { get; set; }

    /// <summary>full, diff or incr: the kind of backup RetentionArchive counts.</summary>
    public string? RetentionArchiveType { get; set; }

    /// <summary>Cron schedules for this repository's backups, run by the agent whose PostgreSQL is the primary.</summary>
    public ScheduleOptions Schedules { get; set; } = new();

    public bool? Bundle { get; set; }

    /// <summary>none (default) or aes-256-cbc: the repository is encrypted with the passphrase below.</summary>
    public string? CipherType { get; set; }

    /// <summary>The cipher passphrase; prefer <see cref="CipherPassFile"/> (a mounted Secret, re-read when it changes).</summary>
    public string? CipherPass { get; set; }

    public string? CipherPassFile { get; set; }

    /// <summary>A PEM file of the certificate authorities that sign the object store's certificate (repo-storage-ca-file).</summary>
    public string? CaFile { get; set; }

    /// <summary>posix only: the directory is a volume every instance of the cluster mounts (ReadWriteMany), so it follows a failover.</summary>
    public bool Shared { get; set; }

    public S3RepositoryOptions? S3 { get; set; }

    public GcsRepositoryOptions? Gcs { get; set; }

    public AzureRepositoryOptions? Azure { get; set; }
}

/// <summary>Cron expressions (5 fields, or 6 with seconds first) per backup type, read in <see cref="TimeZone"/>.</summary>
public sealed class ScheduleOptions
{
    public string? Full { get; set; }

    public string? Diff { get; set; }

    public string? Incr { get; set; }

    /// <summary>When to run pgBackRest's verify of this repository (reads back every backup file and WAL segment).</summary>
    public string? Verify { get; set; }

    /// <summary>When to run a restore drill of this repository's newest backup (needs Agent:Drills:ScratchDirectory).</summary>
    public string? Drill { get; set; }

    /// <summary>An IANA time zone id (Europe/Berlin); cron times are wall-clock times there, daylight saving included.</summary>
    public string TimeZone { get; set; } = "UTC";
}

/// <summary>Secrets (Key, KeySecret) come from the setting or from the file named by its *File twin, re-read when it changes.</summary>
public sealed class S3RepositoryOptions
{
    public string Bucket { get; set; } = "";
    public string Endpoint { get; set; } = "";
    public string Region { get; set; } = "";

    /// <summary>shared (Key and KeySecret) or auto (the instance's or pod's role).</summary>
    public string KeyType { get; set; } = "shared";
    public string? Key { get; set; }
    public string? KeyFile { get; set; }
    public string? KeySecret { get; set; }
    public string? KeySecretFile { get; set; }

    /// <summary>Server-side encryption with this KMS key (repo-s3-kms-key-id).</summary>
    public string? KmsKeyId { get; set; }
    public string UriStyle { get; set; } = "host";
    public int? Port { get; set; }
    public bool VerifyTls { get; set; } = true;
}

public sealed class GcsRepositoryOptions
{
    public string Bucket { get; set; } = "";

    /// <summary>host[:port]; pgBackRest ignores storage-port for GCS, so the port goes here (127.0.0.1:9443).</summary>
    public string? Endpoint { get; set; }

    /// <summary>service (a service-account JSON key file), token (an access token) or auto (the node's credentials).</summary>
    public string KeyType { get; set; } = "service";

    /// <summary>service: the path of the JSON key file; token: the token.</summary>
    public string? Key { get; set; }

    /// <summary>A file holding the key: the JSON key file itself for service, the token for token.</summary>
    public string? KeyFile { get; set; }
    public bool VerifyTls { get; set; } = true;
}

public sealed class AzureRepositoryOptions
{
    public string Account { get; set; } = "";
    public string Container { get; set; } = "";

    /// <summary>The shared key or the SAS token, by <see cref="KeyType"/>.</summary>
    public string? Key { get; set; }
    public string? KeyFile { get; set; }

    /// <summary>shared or sas.</summary>
    public string KeyType { get; set; } = "shared";
    public string? Endpoint { get; set; }
    public string UriStyle { get; set; } = "host";
    public int? Port { get; set; }
    public bool VerifyTls { get; set; } = true;
}

public sealed class ListenOptions
{
    /// <summary>Control-plane gRPC (HTTP/2, cleartext until TLS comes).</summary>
    public string Address { get; set; } = "127.0.0.1";

    public int Port { get; set; } = 7480;

    /// <summary>Prometheus <c>/metrics</c> (HTTP/1.1), on its own port so scrapers never reach the API.</summary>
    public int MetricsPort { get; set; } = 9187;

    /// <summary>
    /// Unix socket for the archive client, in a volume shared with the PostgreSQL container.
    /// </summary>
    public string ArchiveSocket { get; set; } = "/var/run/backrest-agent/agent.sock";

    /// <summary>
    /// A uid besides the agent's own (and root) that may connect to <see cref="ArchiveSocket"/>: PostgreSQL's, when its
    /// container runs as another user. Checked on each connection with SO_PEERCRED.
    /// </summary>
    public int? ArchiveSocketUid { get; set; }
}
