using System.Globalization;
using Npgsql;

namespace Backrest.Agent.IntegrationTests.Harness;

public enum ShutdownMode
{
    Smart,
    Fast,
    Immediate,
}

public sealed record PostgresClusterOptions
{
    /// <summary>The directory to live in (a <see cref="TestEnvironment"/> shares its own); null: the cluster creates and owns one.</summary>
    public TestDirectory? Directory { get; init; }

    /// <summary>archive_mode = on (with <see cref="ArchiveCommand"/>) or off.</summary>
    public bool Archive { get; init; } = true;

    /// <summary>archive_command; null: the archive client pushing through <see cref="ArchiveSocket"/>.</summary>
    public string? ArchiveCommand { get; init; }

    /// <summary>restore_command; null: the archive client fetching through <see cref="ArchiveSocket"/>.</summary>
    public string? RestoreCommand { get; init; }

    /// <summary>The agent's Unix socket the archive client talks to; null: &lt;dir&gt;/agent.sock.</summary>
    public string? ArchiveSocket { get; init; }

    /// <summary>Lines appended to postgresql.conf after the harness's own (so they win).</summary>
    public IReadOnlyList<string> ExtraConfig { get; init; } = [];

    /// <summary>Arguments added to initdb's (e.g. --wal-segsize=1).</summary>
    public IReadOnlyList<string> InitDbArguments { get; init; } = [];
}

/// <summary>
/// A throwaway PostgreSQL 15 cluster run as the postgres OS user: its own directory, port and Unix socket,
/// no TCP listener. Dispose stops it (immediate) and removes its directory if it created it.
/// Note: <see cref="ExecuteAsync"/> sends several statements as one implicit transaction.
/// </summary>
public sealed class PostgresCluster : IAsyncDisposable
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);
    private readonly bool _ownsDirectory;
    private bool _disposed;

    private PostgresCluster(TestDirectory directory, bool ownsDirectory, string dataDirectory, int port, string logFile)
    {
        Directory = directory;
        _ownsDirectory = ownsDirectory;
        DataDirectory = dataDirectory;
        Port = port;
        LogFile = logFile;
        LeakGuard.Register(this, () => StopAsync(ShutdownMode.Immediate).GetAwaiter().GetResult());
    }

    public TestDirectory Directory { get; }

    public string DataDirectory { get; }

    /// <summary>The Unix socket directory: the test directory itself.</summary>
    public string SocketDirectory => Directory.Path;

    /// <summary>Only names the socket (.s.PGSQL.&lt;port&gt;): listen_addresses is empty.</summary>
    public int Port { get; }

    public string LogFile { get; }

    public string ConnectionString =>
        $"Host={SocketDirectory};Port={Port};Username=postgres;Database=postgres;Pooling=false;Timeout=10";

    /// <summary>True while the postmaster in postmaster.pid is alive (a zombie does not count).</summary>
    public bool IsRunning => PostmasterPid() is { } pid && ProcessIsAlive(pid);

    /// <summary>initdb a new cluster (not started) and write its postgresql.conf.</summary>
    public static async Task<PostgresCluster> CreateAsync(
        PostgresClusterOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new PostgresClusterOptions();
        var directory = options.Directory ?? TestDirectory.Create();
        var cluster = new PostgresCluster(
            directory, ownsDirectory: options.Directory is null, directory.Combine("data"), FreePort.Next(), directory.Combine("postgresql.log"));
        try
        {
            (await OsCommand.RunAsPostgresAsync(
                HarnessPaths.PostgresTool("initdb"),
                ["-D", cluster.DataDirectory, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions", .. options.InitDbArguments],
                cancellationToken: cancellationToken)).EnsureSuccess();

            var socket = options.ArchiveSocket ?? directory.Combine("agent.sock");
            var client = HarnessPaths.ArchiveClient;
            var archiveCommand = options.ArchiveCommand ?? $"{client} --socket {socket} push %p";
            var restoreCommand = options.RestoreCommand ?? $"{client} --socket {socket} get %f \"%p\"";
            List<string> settings =
            [
                "",
                "# backrest-agent integration test harness",
                $"port = {cluster.Port}",
                "listen_addresses = ''",
                $"unix_socket_directories = {Quote(cluster.SocketDirectory)}",
                "wal_level = replica",
                "max_wal_senders = 3",
                "max_connections = 30",
                $"archive_mode = {(options.Archive ? "on" : "off")}",
            ];
            if (options.Archive)
            {
                settings.Add($"archive_command = {Quote(archiveCommand)}");
            }

            settings.Add($"restore_command = {Quote(restoreCommand)}");
            settings.AddRange(options.ExtraConfig);
            await File.AppendAllLinesAsync(
                Path.Combine(cluster.DataDirectory, "postgresql.conf"), settings, cancellationToken);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A cluster over an existing data directory inside <paramref name="directory"/> (a restored copy, say).
    /// It is started on its own port and socket whatever its postgresql.conf says; its directory is not deleted.
    /// </summary>
    public static PostgresCluster FromDataDirectory(TestDirectory directory, string dataDirectory, int? port = null) =>
        new(directory, ownsDirectory: false, dataDirectory, port ?? FreePort.Next(),
            directory.Combine($"postgresql-{Path.GetFileName(dataDirectory)}.log"));

    /// <summary>Starts the postmaster and waits until it accepts connections (it may still be in recovery).</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        var result = await OsCommand.RunAsPostgresAsync(
            HarnessPaths.PostgresTool("pg_ctl"),
            ["-D", DataDirectory, "-l", LogFile, "-w", "-t", "120", "-o", $"-p {Port} -k '{SocketDirectory}'", "start"],
            cancellationToken: cancellationToken);
        if (!result.Succeeded)
        {
            throw new InvalidOperationException($"PostgreSQL did not start.\n{result}\n--- {LogFile} (tail)\n{LogTail()}");
        }
    }

    public async Task StopAsync(ShutdownMode mode = ShutdownMode.Fast, CancellationToken cancellationToken = default)
    {
        if (!IsRunning)
        {
            return;
        }

        var result = await OsCommand.RunAsPostgresAsync(
            HarnessPaths.PostgresTool("pg_ctl"),
            ["-D", DataDirectory, "-m", mode.ToString().ToLowerInvariant(), "-w", "-t", "120", "stop"],
            cancellationToken: cancellationToken);
        if (!result.Succeeded && IsRunning)
        {
            throw new InvalidOperationException($"PostgreSQL did not stop.\n{result}\n--- {LogFile} (tail)\n{LogTail()}");
        }
    }

    public async Task<int> ExecuteAsync(string sql, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The first column of the first row, read as <typeparamref name="T"/> (int4 reads as long too).</summary>
    public async Task<T> ScalarAsync<T>(string sql, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            throw new InvalidOperationException($"No row from: {sql}");
        }

        return await reader.GetFieldValueAsync<T>(0, cancellationToken);
    }

    public async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        var connection = new NpgsqlConnection(ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public async Task PgBenchInitAsync(int scale, CancellationToken cancellationToken = default) =>
        (await PgBenchAsync(["-i", "-q", "-s", scale.ToString(CultureInfo.InvariantCulture)], cancellationToken)).EnsureSuccess();

    /// <summary>Runs the TPC-B-like workload; the result's stdout has pgbench's report (tps).</summary>
    public async Task<CommandResult> PgBenchRunAsync(int seconds, int clients, CancellationToken cancellationToken = default) =>
        (await PgBenchAsync(
            ["-n", "-T", seconds.ToString(CultureInfo.InvariantCulture), "-c", clients.ToString(CultureInfo.InvariantCulture)],
            cancellationToken)).EnsureSuccess();

    /// <summary>Polls pg_is_in_recovery() (connection errors included) until it is false.</summary>
    public async Task WaitForRecoveryEndAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(120));
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (!await ScalarAsync<bool>("select pg_is_in_recovery()", cancellationToken))
                {
                    return;
                }

                last = null;
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException)
            {
                last = ex;
            }

            await Task.Delay(PollInterval, cancellationToken);
        }

        throw new TimeoutException(
            $"PostgreSQL still in recovery after {timeout ?? TimeSpan.FromSeconds(120)} ({last?.Message ?? "pg_is_in_recovery() = true"}).\n--- {LogFile} (tail)\n{LogTail()}");
    }

    /// <summary>Forces a WAL switch; returns the name of the segment that was just completed (ready to archive).</summary>
    public Task<string> SwitchWalAsync(CancellationToken cancellationToken = default) =>
        ScalarAsync<string>("select pg_walfile_name(pg_switch_wal())", cancellationToken);

    /// <summary>Waits until pg_stat_archiver reports <paramref name="walFileName"/> (or a later segment) archived.</summary>
    public async Task WaitForArchivedAsync(string walFileName, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        string? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = await ScalarAsync<string?>(
                "select coalesce(last_archived_wal, '') from pg_stat_archiver", cancellationToken);
            if (string.CompareOrdinal(last, walFileName) >= 0)
            {
                return;
            }

            await Task.Delay(PollInterval, cancellationToken);
        }

        throw new TimeoutException(
            $"{walFileName} not archived in time (last archived: '{last}').\n--- {LogFile} (tail)\n{LogTail()}");
    }

    public string LogTail(int lines = 50) => TestDirectory.TailOf(LogFile, lines);

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            await StopAsync(ShutdownMode.Immediate);
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"pg_ctl stop -m immediate failed: {ex.Message}");
        }

        // Never leak a postmaster, even one pg_ctl could not stop.
        if (PostmasterPid() is { } pid && ProcessIsAlive(pid))
        {
            KillPostmaster(pid);
        }

        LeakGuard.Unregister(this);
        if (_ownsDirectory)
        {
            Directory.Dispose();
        }
    }

    public override string ToString() => $"PostgreSQL {DataDirectory} (port {Port})";

    private Task<CommandResult> PgBenchAsync(IEnumerable<string> arguments, CancellationToken cancellationToken) =>
        OsCommand.RunAsPostgresAsync(
            HarnessPaths.PostgresTool("pgbench"),
            ["-h", SocketDirectory, "-p", Port.ToString(CultureInfo.InvariantCulture), "-U", "postgres", .. arguments, "postgres"],
            cancellationToken: cancellationToken);

    private int? PostmasterPid()
    {
        try
        {
            using var reader = new StreamReader(Path.Combine(DataDirectory, "postmaster.pid"));
            return int.TryParse(reader.ReadLine(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    private static bool ProcessIsAlive(int pid)
    {
        try
        {
            // /proc/<pid>/stat: "pid (comm) S ..."; Z is a zombie nobody reaped (PID 1 may not reap here).
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].TrimStart();
            return state.Length > 0 && state[0] is not ('Z' or 'X');
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return false;
        }
    }

    private static void KillPostmaster(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            process.Kill(entireProcessTree: true);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            // Gone meanwhile.
        }
    }

    private static string Quote(string value) => $"'{value.Replace("'", "''")}'";
}
