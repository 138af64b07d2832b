using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Backrest.Agent.Core.Backups;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Continuity;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Postgres;
using Backrest.Agent.Core.Restore;
using Backrest.Agent.Core.Status;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Backrest.Agent.Core.Drills;

/// <summary>The backup a drill restores and the volume it restores onto, checked before anything is written.</summary>
internal sealed record DrillPlan(int Repo, BackupInfo Backup, string ScratchDirectory);

/// <summary>
/// Restore drills: the newest backup of a repository restored into a subdirectory of Agent:Drills:ScratchDirectory,
/// started there with no network (a private socket directory, listen_addresses empty), archiving off and hot standby
/// off, so that it opens only once it has replayed the whole archive and promoted; then the check query, a fast stop
/// and the directory removed, whatever happened. One at a time, in the exclusive lane: never beside a backup or restore.
/// A drill cut short by the agent's death leaves its directory (and, outside a container, its server) behind: the next
/// start-up and the next drill stop that server and remove the directory (<see cref="RemoveLeftoversAsync"/>).
/// </summary>
public sealed partial class DrillService(
    RestoreService restores,
    StatusCache cache,
    ArchiveContinuityScanner continuity,
    OperationRegistry operations,
    IProcessRunner runner,
    AgentOptions options,
    TimeProvider time,
    ILogger<DrillService> logger)
{
    /// <summary>Written into each drill's directory first: what <see cref="RemoveLeftoversAsync"/> may remove.</summary>
    private const string Marker = "backrest-agent-drill";

    /// <summary>Tables outside the system schemas of the connected database, and every database's size in bytes.</summary>
    public const string DefaultCheckQuery =
        "select (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace " +
        "where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%') as tables, " +
        "(select string_agg(datname || ' ' || pg_database_size(oid), ', ' order by datname) from pg_database where datallowconn) as database_bytes";

    private readonly Dictionary<int, (bool Succeeded, DrillOutcome? Outcome, DateTimeOffset Finished)> _last =
        LastFromHistory(operations.History, options.Repositories.Count);

    /// <summary>
    /// The last drill of each repository that succeeded or failed (a cancelled one proves nothing either way): whether it
    /// succeeded, and its figures; read from the operation history at start-up, so it survives restarts.
    /// </summary>
    public IReadOnlyDictionary<int, (bool Succeeded, DrillOutcome? Outcome, DateTimeOffset Finished)> Last
    {
        get
        {
            lock (_last)
            {
                return new Dictionary<int, (bool, DrillOutcome?, DateTimeOffset)>(_last);
            }
        }
    }

    public static string Description(int repo) => $"restore drill of repo{repo}";

    internal static Dictionary<int, (bool Succeeded, DrillOutcome? Outcome, DateTimeOffset Finished)> LastFromHistory(
        OperationHistory history, int repositories)
    {
        var records = history.List(history.Capacity); // newest first
        var last = new Dictionary<int, (bool, DrillOutcome?, DateTimeOffset)>();
        for (var repo = 1; repo <= repositories; repo++)
        {
            var description = Description(repo);
            if (records.FirstOrDefault(r => r.Kind == OperationKind.Drill && r.Description == description
                                            && r.State is OperationState.Succeeded or OperationState.Failed) is { Finished: { } finished } record)
            {
                last[repo] = (record.State == OperationState.Succeeded, record.Drill, finished);
            }
        }

        return last;
    }

    /// <summary>
    /// Checks what can be checked now (scratch directory set, a backup to restore, enough free space), then starts the
    /// drill as an operation; a running operation refuses it (ABORTED) unless <paramref name="queueIfBusy"/>.
    /// </summary>
    public async Task<OperationSnapshot> StartAsync(int repo, CancellationToken cancellationToken, bool queueIfBusy = false,
        OperationTrigger trigger = OperationTrigger.Manual)
    {
        var repoKey = BackupService.ResolveRepo(options, repo);
        if (operations.Running is null)
        {
            await PlanAsync(repoKey, cancellationToken).ConfigureAwait(false);
        }

        return operations.Start(new OperationRequest(OperationKind.Drill, Description(repoKey), async (handle, ct) =>
        {
            // In the exclusive lane no other drill runs: whatever a drill left in the scratch directory goes first.
            await RemoveLeftoversAsync(ct).ConfigureAwait(false);
            // Planned again: it may have waited in the queue, and a backup may have been taken since.
            var plan = await PlanAsync(repoKey, ct).ConfigureAwait(false);
            return await RunAsync(handle, plan, ct).ConfigureAwait(false);
        })
        {
            Trigger = trigger,
            BackupType = "drill",
            Repo = repoKey,
        }, queueIfBusy);
    }

    private async Task<DrillPlan> PlanAsync(int repo, CancellationToken cancellationToken)
    {
        var scratch = options.Drills.ScratchDirectory;
        if (scratch.Length == 0)
        {
            throw AgentException.FailedPrecondition("Restore drills need a scratch directory, and Agent:Drills:ScratchDirectory is not set.",
                "Mount a volume of its own (at least the size of the database) and set Agent:Drills:ScratchDirectory to it.");
        }

        if (!Directory.Exists(scratch))
        {
            throw AgentException.FailedPrecondition($"The drills' scratch directory {scratch} does not exist.",
                "Mount the scratch volume there, or point Agent:Drills:ScratchDirectory at an existing directory.");
        }

        var info = await cache.RefreshRepositoryAsync(repo, cancellationToken).ConfigureAwait(false);
        var database = info.Databases.MaxBy(d => d.Id);
        var newest = info.Backups.Where(b => b.RepoKey == repo && (database is null || b.DatabaseId == database.Id)).MaxBy(b => b.Stop)
            ?? throw AgentException.FailedPrecondition($"repo{repo} holds no backup of stanza '{options.Stanza}': there is nothing to drill.",
                $"Take a backup first: backrestctl backup --type full --repo {repo}.");
        var free = new DriveInfo(scratch).AvailableFreeSpace;
        if (free < newest.DatabaseSize)
        {
            throw AgentException.FailedPrecondition(
                $"The scratch volume of {scratch} has {free} bytes free, but backup {newest.Label} restores to {newest.DatabaseSize} bytes: " +
                "the drill would fill it.",
                $"Give Agent:Drills:ScratchDirectory a volume with at least {newest.DatabaseSize} bytes free (more as the database grows).");
        }

        return new DrillPlan(repo, newest, scratch);
    }

    private async Task<OperationResult?> RunAsync(OperationHandle handle, DrillPlan plan, CancellationToken cancellationToken)
    {
        var directory = Path.Combine(plan.ScratchDirectory, handle.Id);
        var data = Path.Combine(directory, "data");
        var sockets = Path.Combine(directory, "socket");
        var log = Path.Combine(directory, "postgresql.log");
        string? pgCtl = null;
        try
        {
            Directory.CreateDirectory(sockets, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            await File.WriteAllTextAsync(Path.Combine(directory, Marker), $"restore drill {handle.Id} of repo{plan.Repo}\n", cancellationToken)
                .ConfigureAwait(false);
            var port = FreePort();
            var restorePlan = await restores.PlanAsync(new RestoreRequest { Repo = plan.Repo, Set = plan.Backup.Label, DataDirectory = data, Port = port },
                cancellationToken).ConfigureAwait(false);
            var clock = Stopwatch.StartNew();
            await restores.RunAsync(handle, restorePlan, cancellationToken).ConfigureAwait(false);
            var restore = clock.Elapsed;

            handle.ReportProgress(100, "replaying the archive in the restored cluster");
            Isolate(directory, data, sockets, port);
            pgCtl = PgCtl(data);
            clock.Restart();
            var timeout = options.Drills.TimeoutMinutes * 60;
            var started = await runner.RunAsync(new ProcessSpec(pgCtl, ["-D", data, "-l", log, "-w", "-t", timeout.ToString(), "start"]),
                cancellationToken).ConfigureAwait(false);
            if (started.ExitCode != 0)
            {
                throw AgentException.FailedPrecondition(
                    $"The restored cluster did not start (pg_ctl exit {started.ExitCode}): {Tail(log)}",
                    "Read the server's log lines above: the image needs the PostgreSQL server binaries (and extensions) of the backup's version.");
            }

            // pg_ctl returns once recovery has started (with hot standby off the postmaster reports "standby" to it); the
            // cluster accepts connections only after it replayed the whole archive and promoted.
            await using var restored = PostgresClient.CreateDataSource(ConnectionString(sockets, port));
            await WaitUntilOpenAsync(restored, data, log, cancellationToken).ConfigureAwait(false);
            var replay = clock.Elapsed;

            handle.ReportPhase("running the check query");
            var (check, segmentSize) = await CheckAsync(restored, cancellationToken).ConfigureAwait(false);
            var (lsn, recoveredTime) = RecoveryLog.EndOfRecovery(File.ReadLines(log));

            handle.ReportPhase("comparing with the newest archived WAL");
            var reach = await ArchiveReach.MeasureAsync(cache, continuity, plan.Repo, lsn, segmentSize, cancellationToken).ConfigureAwait(false);
            if (reach.Behind)
            {
                handle.AddWarning($"Recovery stopped at {lsn} (segment {reach.Segment}), before the newest archived segment {reach.NewestArchivedWal}: " +
                    "a restore to latest loses the WAL after it. See backrestctl check for gaps in the archive.");
            }

            var outcome = new DrillOutcome(plan.Repo, plan.Backup.Label, restore, replay, lsn, reach.Segment, recoveredTime, reach.NewestArchivedWal, check)
            {
                Shortfall = reach.Behind,
            };
            Remember(plan.Repo, true, outcome);
            return outcome;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Remember(plan.Repo, false, null);
            throw;
        }
        finally
        {
            handle.ReportPhase("stopping the restored cluster and removing it");
            if (await RemoveAsync(pgCtl, directory, data).ConfigureAwait(false) is { } problem)
            {
                handle.AddWarning(problem);
            }
        }
    }

    /// <summary>
    /// Stops the server and removes the directory of every drill the scratch directory still holds (marked by
    /// <see cref="Marker"/>): an agent killed during a drill (SIGKILL, OOM, the pod's container restarted) never ran its
    /// clean-up, and the scratch volume (an emptyDir) outlives the container. Called at start-up and before each drill.
    /// </summary>
    public async Task RemoveLeftoversAsync(CancellationToken cancellationToken)
    {
        var scratch = options.Drills.ScratchDirectory;
        if (scratch.Length == 0 || !Directory.Exists(scratch))
        {
            return;
        }

        foreach (var directory in Directory.EnumerateDirectories(scratch).Where(d => File.Exists(Path.Combine(d, Marker))).ToList())
        {
            cancellationToken.ThrowIfCancellationRequested();
            var data = Path.Combine(directory, "data");
            var pgCtl = File.Exists(Path.Combine(data, "PG_VERSION")) ? PgCtl(data) : null;
            Log.RemovingLeftover(logger, directory, PostgresClient.IsRunningOn(data));
            if (await RemoveAsync(pgCtl, directory, data).ConfigureAwait(false) is { } problem)
            {
                Log.LeftoverNotRemoved(logger, problem);
            }
        }
    }

    /// <summary>pg_ctl of the restored cluster's major version (PG_VERSION), unless Agent:Drills:PostgresBinDirectory names one.</summary>
    private string PgCtl(string data)
    {
        var bin = options.Drills.PostgresBinDirectory is { Length: > 0 } configured
            ? configured
            : $"/usr/lib/postgresql/{File.ReadAllText(Path.Combine(data, "PG_VERSION")).Trim()}/bin";
        return Path.Combine(bin, "pg_ctl");
    }

    /// <summary>
    /// Settings appended to the restored cluster's postgresql.auto.conf (later lines win): no TCP, a socket directory
    /// only the agent's user can enter, no archiving into the stanza, opened only after the whole replay, local trust
    /// through that private socket (the source's pg_hba.conf may ask for passwords), messages in English for the log,
    /// little memory.
    /// </summary>
    private static void Isolate(string directory, string data, string sockets, int port)
    {
        var hba = Path.Combine(directory, "pg_hba.conf");
        File.WriteAllText(hba, "local all all trust\n");
        File.AppendAllLines(Path.Combine(data, "postgresql.auto.conf"),
        [
            "# backrest-agent restore drill: private socket, no network, no archiving",
            "listen_addresses = ''",
            $"unix_socket_directories = '{sockets}'",
            $"port = {port}",
            "archive_mode = off",
            "hot_standby = off",
            "ssl = off",
            "logging_collector = off",
            "lc_messages = 'C'",
            $"hba_file = '{hba}'",
            // Inside the agent's container and memory limit: small, whatever the source uses (without hot standby,
            // recovery does not require the source's connection and worker limits).
            "shared_buffers = '64MB'",
            "huge_pages = off",
            "max_connections = 10",
        ]);
    }

    private string ConnectionString(string sockets, int port) => new NpgsqlConnectionStringBuilder
    {
        Host = sockets,
        Port = port,
        Username = options.Postgres.User,
        Database = options.Postgres.Database,
        Pooling = false,
        Timeout = 5,
        CommandTimeout = 600,
        ApplicationName = "backrest-agent-drill",
    }.ConnectionString;

    /// <summary>Polls until the restored cluster accepts a connection out of recovery; fails when it dies or the timeout passes.</summary>
    private async Task WaitUntilOpenAsync(NpgsqlDataSource restored, string data, string log, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow().AddMinutes(options.Drills.TimeoutMinutes);
        while (true)
        {
            try
            {
                await using var connection = restored.CreateConnection();
                await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
                await using var recovery = new NpgsqlCommand("select pg_is_in_recovery()", connection);
                if (await recovery.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is false)
                {
                    return;
                }
            }
            catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.CannotConnectNow)
            {
                // Still replaying.
            }

            // Not the pid file alone: a server killed outright (OOM) leaves it, and the drill would wait out its timeout.
            if (!PostgresClient.IsRunningOn(data))
            {
                throw AgentException.FailedPrecondition($"The restored cluster stopped during recovery: {Tail(log)}",
                    "Read the server's log lines above (a missing WAL segment, a missing extension library, too little memory).");
            }

            if (time.GetUtcNow() > deadline)
            {
                throw AgentException.FailedPrecondition(
                    $"The restored cluster was still replaying after {options.Drills.TimeoutMinutes} min: {Tail(log)}",
                    "Raise Agent:Drills:TimeoutMinutes, or take backups more often so that less WAL must be replayed.");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<(IReadOnlyList<string> Row, long SegmentSize)> CheckAsync(NpgsqlDataSource restored, CancellationToken cancellationToken)
    {
        await using var connection = restored.CreateConnection();
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        var row = new List<string>();
        // Every column in PostgreSQL's text form: the query is the user's, of any column types, and shown as text.
        await using (var command = new NpgsqlCommand(options.Drills.CheckQuery is { Length: > 0 } query ? query : DefaultCheckQuery, connection)
                     { AllResultTypesAreUnknown = true })
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    row.Add($"{reader.GetName(i)}={(reader.IsDBNull(i) ? "null" : reader.GetString(i))}");
                }
            }
        }

        await using var size = new NpgsqlCommand("select setting::bigint from pg_settings where name = 'wal_segment_size'", connection);
        return (row, (long)(await size.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!);
    }

    /// <summary>
    /// Stops the restored cluster (fast, then immediate) and removes the drill's directory; what went wrong, or null. A
    /// server that still runs keeps its directory: removing it under a live server would leave that server running.
    /// </summary>
    private async Task<string?> RemoveAsync(string? pgCtl, string directory, string data)
    {
        if (pgCtl is not null && PostgresClient.IsRunningOn(data))
        {
            foreach (var mode in (string[])["fast", "immediate"])
            {
                var stopped = await runner.RunAsync(new ProcessSpec(pgCtl, ["-D", data, "-m", mode, "-w", "-t", "60", "stop"]), CancellationToken.None)
                    .ConfigureAwait(false);
                if (stopped.ExitCode == 0)
                {
                    break;
                }
            }
        }

        if (PostgresClient.IsRunningOn(data))
        {
            return $"The drill's server on {data} did not stop (pid in its postmaster.pid). Stop it (pg_ctl -D {data} -m immediate stop), then remove {directory}.";
        }

        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }

            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return $"Could not remove the drill's directory {directory}: {ex.Message}. Remove it before the next drill.";
        }
    }

    private void Remember(int repo, bool succeeded, DrillOutcome? outcome)
    {
        lock (_last)
        {
            _last[repo] = (succeeded, outcome, time.GetUtcNow());
        }
    }

    /// <summary>The restored cluster listens on no TCP address; the port only names its socket, but a free one is chosen anyway.</summary>
    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string Tail(string log) =>
        File.Exists(log) ? string.Join(" | ", File.ReadLines(log).TakeLast(5)) : "no server log was written";

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.DrillLeftoverRemoving, EventName = nameof(LogEvents.DrillLeftoverRemoving), Level = LogLevel.Warning,
            Message = "Removing {Directory}, left by a restore drill that did not finish (the agent stopped during it; its server running: {Running})")]
        public static partial void RemovingLeftover(ILogger logger, string directory, bool running);

        [LoggerMessage(EventId = LogEvents.DrillLeftoverNotRemoved, EventName = nameof(LogEvents.DrillLeftoverNotRemoved), Level = LogLevel.Error,
            Message = "{Problem}")]
        public static partial void LeftoverNotRemoved(ILogger logger, string problem);
    }
}
