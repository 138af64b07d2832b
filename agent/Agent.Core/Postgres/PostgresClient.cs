using Backrest.Agent.Core.Archive;
using Backrest.Agent.Core.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Backrest.Agent.Core.Postgres;

public sealed record PostgresState(bool Reachable, bool InRecovery, string Version, string? Error);

/// <summary>Where this instance stands in replication, read from PostgreSQL alone (see <see cref="PostgresClient.ReadAsync"/>).</summary>
public sealed record PostgresRole(
    bool Up,
    bool InRecovery,
    long Timeline,
    string? Lsn,
    string? ReceiveLsn,
    double? ReplayLagSeconds,
    string? Error);

/// <summary>One read of this instance as GetRole and status report it, and when it was made.</summary>
public sealed record PostgresReading(PostgresRole Role, string Version, ArchiverStats? Archiver, DateTimeOffset ReadAt)
{
    public PostgresState State => new(Role.Up, Role.InRecovery, Version, Role.Error);
}

public sealed record ArchiverStats(
    long ArchivedCount,
    long FailedCount,
    string? LastArchivedWal,
    DateTimeOffset? LastArchivedTime,
    string? LastFailedWal,
    DateTimeOffset? LastFailedTime);

/// <summary>
/// The agent's view of its PostgreSQL, over the local Unix socket: read-only, apart from waking a stalled
/// archiver (<see cref="WakeStalledArchiverAsync"/>).
/// </summary>
public sealed partial class PostgresClient(AgentOptions options, TimeProvider time, ILogger<PostgresClient> logger)
{
    private static readonly TimeSpan ArchiverWakeInterval = TimeSpan.FromMinutes(1);
    private DateTimeOffset _lastArchiverWake = DateTimeOffset.MinValue;

    private readonly NpgsqlDataSource _dataSource = CreateDataSource(new NpgsqlConnectionStringBuilder
    {
        Host = options.Postgres.SocketDirectory,
        Port = options.Postgres.Port,
        Username = options.Postgres.User,
        Database = options.Postgres.Database,
        Timeout = 3,
        CommandTimeout = 10,
        ApplicationName = "backrest-agent",
        // A status probe must not hold connections open between calls.
        Pooling = false,
    }.ConnectionString);

    /// <summary>
    /// Npgsql's slim data source: the agent reads booleans, numbers, text and timestamps only, and the full one's type
    /// support (JSON, arrays, ranges, geometry, ...) made the NativeAOT binary, and the memory it takes at start-up,
    /// larger (tests/bench/footprint.sh).
    /// </summary>
    public static NpgsqlDataSource CreateDataSource(string connectionString) =>
        new NpgsqlSlimDataSourceBuilder(connectionString).Build();

    public async Task<PostgresState> GetStateAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = _dataSource.CreateConnection();
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("select pg_is_in_recovery(), current_setting('server_version')", connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return new PostgresState(true, reader.GetBoolean(0), reader.GetString(1), null);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return new PostgresState(false, false, "", ex.Message);
        }
    }

    /// <summary>
    /// Role, timeline, LSN, replay lag, version and the archiver's counters in one short query: what GetRole and status
    /// report (through <see cref="PostgresReadingCache"/>, which shares one read among concurrent callers).
    /// The primary's timeline is that of its current WAL file (pg_control's checkpoint lags behind a promotion); a
    /// standby's is the one its WAL receiver streams, else its last checkpoint's. The lag is 0 when all received WAL is
    /// replayed, since the last replayed commit's age then only says how idle the primary is.
    /// </summary>
    public async Task<PostgresReading> ReadAsync(CancellationToken cancellationToken)
    {
        const string sql = """
            select r,
              case when r then pg_last_wal_replay_lsn()::text else pg_current_wal_lsn()::text end,
              case when r then coalesce((select received_tli::bigint from pg_stat_wal_receiver), (pg_control_checkpoint()).timeline_id::bigint)
                   else ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint end,
              case when r then pg_last_wal_receive_lsn()::text end,
              case when not r then null
                   when pg_last_wal_receive_lsn() is not null and pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() then 0
                   else extract(epoch from now() - pg_last_xact_replay_timestamp())::float8 end,
              current_setting('server_version'),
              a.archived_count, a.failed_count, a.last_archived_wal, a.last_archived_time, a.last_failed_wal, a.last_failed_time
            from pg_is_in_recovery() r, pg_stat_archiver a
            """;
        try
        {
            await using var connection = _dataSource.CreateConnection();
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(sql, connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var role = new PostgresRole(
                true,
                reader.GetBoolean(0),
                reader.IsDBNull(2) ? 0 : reader.GetInt64(2),
                reader.IsDBNull(1) ? null : reader.GetString(1),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetDouble(4),
                null);
            var archiver = new ArchiverStats(
                reader.GetInt64(6),
                reader.GetInt64(7),
                reader.IsDBNull(8) ? null : reader.GetString(8),
                reader.IsDBNull(9) ? null : reader.GetFieldValue<DateTimeOffset>(9),
                reader.IsDBNull(10) ? null : reader.GetString(10),
                reader.IsDBNull(11) ? null : reader.GetFieldValue<DateTimeOffset>(11));
            return new PostgresReading(role, reader.GetString(5), archiver, time.GetUtcNow());
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return new PostgresReading(new PostgresRole(false, false, 0, null, null, null, ex.Message), "", null, time.GetUtcNow());
        }
    }

    public async Task<ArchiverStats?> GetArchiverStatsAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = _dataSource.CreateConnection();
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand(
                "select archived_count, failed_count, last_archived_wal, last_archived_time, last_failed_wal, last_failed_time from pg_stat_archiver",
                connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            return new ArchiverStats(
                reader.GetInt64(0),
                reader.GetInt64(1),
                reader.IsDBNull(2) ? null : reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetFieldValue<DateTimeOffset>(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.IsDBNull(5) ? null : reader.GetFieldValue<DateTimeOffset>(5));
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return null;
        }
    }

    /// <summary>
    /// After a promotion pg_control keeps the old timeline until the next checkpoint, and pgBackRest's backup of the new
    /// primary fails until then (error 58: the start segment it waits for is on a timeline pg_control does not name yet).
    /// PostgreSQL only requests that checkpoint, spread over checkpoint_completion_target: on a new primary whose current
    /// WAL timeline is ahead of its last checkpoint's, run CHECKPOINT now. Returns the timelines when it did.
    /// </summary>
    /// <param name="checkpointing">Called just before CHECKPOINT runs (the backup shows it as its phase).</param>
    public async Task<(long From, long To)?> CheckpointIfTimelineChangedAsync(Action<string> checkpointing, CancellationToken cancellationToken)
    {
        const string sql = """
            select (pg_control_checkpoint()).timeline_id::bigint,
                   ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint
            where not pg_is_in_recovery()
            """;
        try
        {
            await using var connection = _dataSource.CreateConnection();
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            long checkpointed, current;
            await using (var command = new NpgsqlCommand(sql, connection))
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return null; // a standby: its checkpoints follow the primary's
                }

                (checkpointed, current) = (reader.GetInt64(0), reader.GetInt64(1));
            }

            if (checkpointed >= current)
            {
                return null;
            }

            checkpointing($"checkpoint: promoted to timeline {current}, last checkpoint on {checkpointed}");
            await using var checkpoint = new NpgsqlCommand("checkpoint", connection);
            checkpoint.CommandTimeout = 300; // it writes every dirty buffer at once
            await checkpoint.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            Log.CheckpointAfterPromotion(logger, checkpointed, current);
            return (checkpointed, current);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            // Without the right (superuser or pg_checkpoint) the backup still runs; pgBackRest then names the problem.
            Log.CheckpointAfterPromotionFailed(logger, ex.Message);
            return null;
        }
    }

    /// <summary>wal_segment_size in bytes; null while PostgreSQL does not answer.</summary>
    public async Task<long?> GetWalSegmentSizeAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = _dataSource.CreateConnection();
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            // pg_settings gives the size in bytes (unit B) whatever SHOW would print ("16MB").
            await using var command = new NpgsqlCommand("select setting::bigint from pg_settings where name = 'wal_segment_size'", connection);
            return (long?)await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NpgsqlException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return null;
        }
    }

    /// <summary>
    /// After three failed archive_command calls in a row PostgreSQL's archiver sleeps up to 60 s, and only a new
    /// finished segment or a signal wakes it earlier. Once the cause is gone (stanza created, repository back)
    /// a backup would wait that minute for WAL that is ready to go, and fail at pgBackRest's archive-timeout
    /// (60 s, error 82). When segments wait and the archiver's last attempt failed, pg_reload_conf() wakes it:
    /// the archiver handles SIGHUP by setting its latch and retrying at once. Returns whether it woke it.
    /// </summary>
    public async Task<bool> WakeStalledArchiverAsync(CancellationToken cancellationToken)
    {
        // A reload also applies any staged edit of postgresql.conf: at most once a minute (the archiver's longest sleep).
        var now = time.GetUtcNow();
        if (now - _lastArchiverWake < ArchiverWakeInterval)
        {
            return false;
        }

        try
        {
            if (ReadyBacklog.Read(options.Postgres.DataDirectory, now).Count == 0 ||
                await GetArchiverStatsAsync(cancellationToken).ConfigureAwait(false) is not { LastFailedTime: { } failed } stats ||
                failed < stats.LastArchivedTime)
            {
                return false;
            }

            _lastArchiverWake = now;
            await using var connection = _dataSource.CreateConnection();
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var command = new NpgsqlCommand("select pg_reload_conf()", connection);
            await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            Log.ArchiverWoken(logger, failed);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return false; // best effort: the archiver wakes by itself within a minute
        }
    }

    /// <summary>
    /// Whether a PostgreSQL server runs on <paramref name="dataDirectory"/>: postmaster.pid names a live
    /// process, or the server answers on its socket. A stale pid file alone does not count as running.
    /// </summary>
    public static bool IsRunningOn(string dataDirectory)
    {
        var pidFile = Path.Combine(dataDirectory, "postmaster.pid");
        if (!File.Exists(pidFile))
        {
            return false;
        }

        string? firstLine;
        try
        {
            firstLine = File.ReadLines(pidFile).FirstOrDefault();
        }
        catch (IOException)
        {
            return true; // unreadable: assume the worst
        }

        if (!int.TryParse(firstLine?.Trim(), out var pid) || pid <= 0)
        {
            return true;
        }

        // /proc/<pid> exists for a live process in our PID namespace; in another container's namespace
        // we cannot see it, so a pid file we cannot disprove counts as running.
        return Directory.Exists($"/proc/{pid}") || !Directory.Exists("/proc/self");
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.ArchiverWoken, EventName = nameof(LogEvents.ArchiverWoken), Level = LogLevel.Information,
            Message = "Woke PostgreSQL's archiver with pg_reload_conf(): WAL was waiting after a failed archive attempt at {LastFailed}")]
        public static partial void ArchiverWoken(ILogger logger, DateTimeOffset lastFailed);

        [LoggerMessage(EventId = LogEvents.CheckpointAfterPromotion, EventName = nameof(LogEvents.CheckpointAfterPromotion), Level = LogLevel.Information,
            Message = "Ran CHECKPOINT before the backup: this PostgreSQL was promoted (WAL timeline {Timeline}, last checkpoint on {CheckpointTimeline}), and pgBackRest refuses a backup until pg_control names the new timeline")]
        public static partial void CheckpointAfterPromotion(ILogger logger, long checkpointTimeline, long timeline);

        [LoggerMessage(EventId = LogEvents.CheckpointAfterPromotionFailed, EventName = nameof(LogEvents.CheckpointAfterPromotionFailed), Level = LogLevel.Warning,
            Message = "Could not check for (or run) a checkpoint after a promotion before the backup: {Error}; if pgBackRest fails with error 58, run CHECKPOINT on the new primary (or give the agent's user pg_checkpoint)")]
        public static partial void CheckpointAfterPromotionFailed(ILogger logger, string error);
    }
}
