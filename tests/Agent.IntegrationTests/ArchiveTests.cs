using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;
using Npgsql;
using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// WAL archiving end to end: PostgreSQL's archive_command is the archive client, which asks the agent over its
/// Unix socket, which runs pgBackRest. `pgbackrest check` passes with a hole in the archive and a restore to
/// latest stops silently at one, so continuity is proven from the repository's own file list and from exact
/// row counts in a restored copy, never from pg_stat_archiver alone.
/// </summary>
public sealed partial class ArchiveTests(ITestOutputHelper output)
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    [Fact]
    public async Task PushWal_PgBenchLoad_EverySegmentArchivedWithoutHole()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());

        await env.Postgres.PgBenchInitAsync(scale: 5);
        await env.Postgres.PgBenchRunAsync(seconds: 8, clients: 2);
        var switched = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(switched, TimeSpan.FromSeconds(45));

        var archiver = await ReadArchiverAsync(env.Postgres);
        Assert.Equal(0L, archiver.FailedCount);
        Assert.Equal(switched, archiver.LastArchivedWal);

        var segments = ArchivedSegments(env);
        // The cluster's very first segment is there too: nothing was skipped before the stanza existed.
        Assert.Equal("000000010000000000000001", segments[0]);
        AssertContinuous(segments, archiver.LastArchivedWal);
        Assert.True(segments.Count >= 5, $"Only {segments.Count} segments archived: the load did not produce WAL.");

        var status = await env.Client.GetStatusAsync(new GetStatusRequest());
        var repo = Assert.Single(status.Archive.Repositories);
        Assert.True(repo.Pushed > 0, $"repo1 pushed = {repo.Pushed}");
        Assert.Equal(0L, repo.Failed);
        Assert.True(status.Archive.ReadyCount <= 1, $"ready_count = {status.Archive.ReadyCount} after the archive caught up");
        Assert.NotEqual("", status.Archive.LastArchivedWal);
        Assert.True(string.CompareOrdinal(status.Archive.LastArchivedWal, switched) >= 0,
            $"agent's last_archived_wal {status.Archive.LastArchivedWal} is before {switched}");
        Assert.Equal(0L, status.Archive.PgStatArchiver.FailedCount);
        Assert.Equal(0L, status.Archive.DroppedSegments);
    }

    [Fact]
    public async Task PushWal_RepositoryUnwritableDuringLoad_BacklogDrainsAndRestoreReplaysEveryCommit()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.ExecuteAsync("create table t (n bigint primary key)");

        // The only backup is taken before the fault: the restore must replay the whole faulted range from the archive.
        var backup = await env.WaitAsync(
            await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" }), TimeSpan.FromSeconds(45));
        Assert.True(backup.State == OperationState.Succeeded, $"backup: {backup}");

        var stanzaArchive = Path.Combine(env.Agent.RepositoryPath, "archive", env.Stanza);
        var originalMode = File.GetUnixFileMode(stanzaArchive);
        await using var writer = await CounterWriter.StartAsync(env.Postgres);
        await writer.WaitForCommitsAsync(50, TimeSpan.FromSeconds(10));
        var faultStart = await env.Postgres.ScalarAsync<string>("select pg_walfile_name(pg_current_wal_lsn())");
        Assert.True(string.CompareOrdinal(backup.Backup.Backup.WalStop, faultStart) < 0,
            $"backup ends in {backup.Backup.Backup.WalStop}, the fault starts in {faultStart}");
        var failedBefore = (await ReadArchiverAsync(env.Postgres)).FailedCount;

        AgentStatus faulted;
        try
        {
            File.SetUnixFileMode(stanzaArchive, UnixFileMode.None);

            // Segments keep completing (the writer plus switches) while every push fails; the fault lasts until
            // PostgreSQL has failed three times in a row (its archiver then backs off) and a backlog is visible.
            faulted = await PollAsync(
                async () =>
                {
                    await env.Postgres.SwitchWalAsync();
                    var s = await env.Client.GetStatusAsync(new GetStatusRequest());
                    var r = s.Archive.Repositories.Single();
                    return r.Failed >= 3 && r.LastError.Length > 0 && s.Archive.PgStatArchiver.FailedCount >= failedBefore + 3
                        && s.Archive.ReadyCount >= 3 && s.Archive.OldestReadyAgeSeconds > 0
                        ? s
                        : null;
                },
                TimeSpan.FromSeconds(20),
                () => $"archiving did not visibly fail with the repository unwritable.\n{env.Agent.LogTail()}");
        }
        finally
        {
            File.SetUnixFileMode(stanzaArchive, originalMode);
        }

        var faultedRepo = faulted.Archive.Repositories.Single();
        Assert.NotNull(faultedRepo.LastErrorTime);
        Assert.Contains("Permission denied", faultedRepo.LastError, StringComparison.Ordinal);
        Assert.True(writer.Committed > 50, "the writer stalled during the fault");

        // The backlog drains once the repository is writable again; a switch now and then wakes an archiver that
        // backed off after three failures.
        var nudges = 0;
        var drained = await PollAsync(
            async () =>
            {
                var s = await env.Client.GetStatusAsync(new GetStatusRequest());
                if (s.Archive.ReadyCount <= 1)
                {
                    return s;
                }

                if (++nudges % 10 == 0)
                {
                    await env.Postgres.SwitchWalAsync();
                }

                return null;
            },
            TimeSpan.FromSeconds(30),
            () => $"the .ready backlog did not drain.\n{env.Agent.LogTail()}");
        Assert.True(drained.Archive.Repositories.Single().Pushed > 0);

        var committed = await writer.StopAsync();
        Assert.Equal(committed, await env.Postgres.ScalarAsync<long>("select count(*) from t"));
        var last = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(last, TimeSpan.FromSeconds(30));
        AssertContinuous(ArchivedSegments(env), last);

        var copyDirectory = env.Directory.Combine("restored");
        var port = FreePort.Next();
        var restore = await env.WaitAsync(
            await env.Client.StartRestoreAsync(new StartRestoreRequest { DataDirectory = copyDirectory, Port = port }),
            TimeSpan.FromSeconds(45));
        Assert.True(restore.State == OperationState.Succeeded, $"restore: {restore}");

        await using var copy = PostgresCluster.FromDataDirectory(env.Directory, copyDirectory, port);
        await copy.StartAsync();
        await copy.WaitForRecoveryEndAsync(TimeSpan.FromSeconds(45));
        await using var connection = await copy.OpenAsync();
        await using var query = new NpgsqlCommand("select count(*), coalesce(max(n), 0) from t", connection);
        await using var reader = await query.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal((committed, committed), (reader.GetInt64(0), reader.GetInt64(1)));
    }

    [Fact]
    public async Task PushWal_AgentKilledDuringLoad_ClientFailsFastAndArchiveStaysContinuous()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.ExecuteAsync("create table t (n bigint primary key)");
        await using var writer = await CounterWriter.StartAsync(env.Postgres);
        await writer.WaitForCommitsAsync(50, TimeSpan.FromSeconds(10));
        await env.Postgres.WaitForArchivedAsync(await env.Postgres.SwitchWalAsync(), TimeSpan.FromSeconds(30));
        var failedBefore = (await ReadArchiverAsync(env.Postgres)).FailedCount;

        // SIGKILL while the agent runs an archive-push for PostgreSQL, not in a quiet moment between pushes.
        var killedMidPush = false;
        for (var attempt = 0; attempt < 5 && !killedMidPush; attempt++)
        {
            await env.Postgres.SwitchWalAsync();
            killedMidPush = await WaitForChildProcessAsync(env.Agent.ProcessId!.Value, "archive-push", TimeSpan.FromSeconds(3));
            if (killedMidPush)
            {
                env.Agent.Kill();
            }
        }

        Assert.True(killedMidPush, "never caught the agent running archive-push");

        var segment = Directory.EnumerateFiles(Path.Combine(env.Postgres.DataDirectory, "pg_wal"))
            .Where(f => SegmentName().IsMatch(Path.GetFileName(f)))
            .Order(StringComparer.Ordinal)
            .First();
        var push = await OsCommand.RunAsPostgresAsync(
            HarnessPaths.ArchiveClient, ["--socket", env.Agent.ArchiveSocket, "push", segment],
            new CommandOptions { Timeout = TimeSpan.FromSeconds(10) });
        Assert.True(push.ExitCode != 0, $"push with the agent dead succeeded: {push}");
        Assert.True(push.Elapsed < TimeSpan.FromSeconds(2), $"push with the agent dead took too long: {push}");

        // PostgreSQL keeps retrying; completed segments pile up as .ready.
        await PollAsync(
            async () =>
            {
                await env.Postgres.SwitchWalAsync();
                var failed = (await ReadArchiverAsync(env.Postgres)).FailedCount;
                return ReadyFiles(env.Postgres) >= 3 && failed > failedBefore ? (object)failed : null;
            },
            TimeSpan.FromSeconds(20),
            () => $"no archiving failures piled up with the agent dead.\n{env.Postgres.LogTail()}");

        await env.Agent.StartAsync();
        var switched = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(switched, TimeSpan.FromSeconds(30));
        var committed = await writer.StopAsync();
        Assert.True(committed > 50);

        var check = await env.PgBackRestAsync("check");
        Assert.True(check.Succeeded, check.ToString());
        var archiver = await ReadArchiverAsync(env.Postgres);
        AssertContinuous(ArchivedSegments(env), archiver.LastArchivedWal);
    }

    /// <summary>
    /// The usual first start: PostgreSQL archives before the stanza exists, every attempt fails, and after three its
    /// archiver sleeps a minute. Creating the stanza must get that WAL archived at once, or the first backup waits for
    /// it and fails at archive-timeout.
    /// </summary>
    [Fact]
    public async Task CreateStanza_AfterArchiveAttemptsFailed_WaitingWalArchivedWithinSeconds()
    {
        await using var env = await TestEnvironment.CreateAsync();
        var segment = await env.Postgres.SwitchWalAsync();
        await AgentTestExtensions.WaitUntilAsync(
            async () => await env.Postgres.ScalarAsync<long>("select failed_count from pg_stat_archiver") >= 3,
            TimeSpan.FromSeconds(30), () => "PostgreSQL's archiver did not fail three times without a stanza");

        var clock = Stopwatch.StartNew();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        await env.Postgres.WaitForArchivedAsync(segment, TimeSpan.FromSeconds(20));
        output.WriteLine($"{segment} archived {clock.Elapsed.TotalSeconds:0.0} s after stanza-create (the archiver's own retry: up to 60 s)");
    }

    /// <summary>
    /// The agent dies in the middle of a call (it read the request, never answered): stood in for by a real Unix socket
    /// that accepts, reads the request and hangs up. The client must say what happened and that PostgreSQL will retry,
    /// not print the HTTP stack's "The response ended prematurely".
    /// </summary>
    [Theory]
    [InlineData("push", "went away during the push", "PostgreSQL retries it")]
    [InlineData("get", "went away during the get", "PostgreSQL retries the get")]
    public async Task ArchiveClient_AgentHangsUpMidCall_SaysTheAgentWentAwayAndPostgresRetries(string verb, string what, string retry)
    {
        using var directory = TestDirectory.Create();
        var socketPath = directory.Combine("agent.sock");
        using var listener = new System.Net.Sockets.Socket(
            System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath));
        listener.Listen();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var hangUps = 0;
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var connection = await listener.AcceptAsync(stop.Token);
                // An HTTP/2 server's first frame, an empty SETTINGS, as the agent sends it: the connection is up.
                await connection.SendAsync(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }, System.Net.Sockets.SocketFlags.None, stop.Token);
                // Read what the client sends (preface, settings, the call) for a moment, then close without a reply.
                var buffer = new byte[64 * 1024];
                using var reading = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                reading.CancelAfter(TimeSpan.FromMilliseconds(300));
                try
                {
                    while (await connection.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, reading.Token) > 0)
                    {
                    }
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                }

                Interlocked.Increment(ref hangUps);
            }
        });

        string[] operands = verb == "push"
            ? [directory.Combine("pg_wal/000000010000000000000001")]
            : ["000000010000000000000001", directory.Combine("pg_wal/RECOVERYXLOG")];
        var result = await OsCommand.RunAsync(HarnessPaths.ArchiveClient, ["--socket", socketPath, verb, .. operands],
            new CommandOptions { Timeout = TimeSpan.FromSeconds(45) });
        await stop.CancelAsync();
        await server.ContinueWith(_ => { });

        output.WriteLine(result.ToString());
        Assert.True(hangUps > 0, "the client never connected");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains(what, result.StandardError);
        Assert.Contains(retry, result.StandardError);
        Assert.DoesNotContain("HttpRequestException", result.StandardError);
        Assert.DoesNotContain("ended prematurely", result.StandardError);
    }

    [Fact]
    public async Task WalArchive_CalledOverTcp_PermissionDenied()
    {
        await using var env = await TestEnvironment.CreateAsync();
        var client = new WalArchive.WalArchiveClient(env.Agent.Channel);
        var segment = Path.Combine(env.Postgres.DataDirectory, "pg_wal", "000000010000000000000001");

        var push = await Assert.ThrowsAsync<RpcException>(
            async () => await client.PushWalAsync(new PushWalRequest { Path = segment }));
        Assert.Equal(StatusCode.PermissionDenied, push.StatusCode);

        var get = await Assert.ThrowsAsync<RpcException>(async () => await client.GetWalAsync(
            new GetWalRequest { Name = "000000010000000000000001", Destination = env.Directory.Combine("x/RECOVERYXLOG") }));
        Assert.Equal(StatusCode.PermissionDenied, get.StatusCode);
    }

    [Fact]
    public async Task WalArchive_BadPathOrMissingSegmentOnSocket_InvalidArgumentOrNotFound()
    {
        await using var env = await TestEnvironment.CreateAsync();
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        using var channel = env.Agent.CreateArchiveSocketChannel();
        var client = new WalArchive.WalArchiveClient(channel);

        foreach (var path in new[] { "pg_wal/000000010000000000000001", "/etc/passwd", "" })
        {
            var error = await Assert.ThrowsAsync<RpcException>(
                async () => await client.PushWalAsync(new PushWalRequest { Path = path }));
            Assert.True(error.StatusCode == StatusCode.InvalidArgument, $"PushWal '{path}': {error.Status}");
        }

        var missingFile = await Assert.ThrowsAsync<RpcException>(async () => await client.PushWalAsync(
            new PushWalRequest { Path = env.Directory.Combine("nowhere/000000010000000000000001") }));
        Assert.Equal(StatusCode.NotFound, missingFile.StatusCode);

        // A segment-named file outside this cluster's pg_wal is not this cluster's WAL.
        var stray = env.Directory.WriteFile("000000010000000000000001", "not WAL");
        var strayPush = await Assert.ThrowsAsync<RpcException>(async () => await client.PushWalAsync(new PushWalRequest { Path = stray }));
        Assert.True(strayPush.StatusCode == StatusCode.InvalidArgument, strayPush.Status.ToString());
        Assert.Contains("pg_wal", strayPush.Status.Detail);

        // Only PostgreSQL's own file names: a traversal dressed as a history file must not reach pgBackRest.
        var outside = env.Directory.WriteFile("outside.history", "not WAL");
        foreach (var name in new[] { "../../etc/passwd", "../../../../outside.history", "RECOVERYXLOG" })
        {
            var error = await Assert.ThrowsAsync<RpcException>(async () => await client.GetWalAsync(
                new GetWalRequest { Name = name, Destination = env.Directory.Combine("RECOVERYHISTORY") }));
            Assert.True(error.StatusCode == StatusCode.InvalidArgument, $"GetWal '{name}': {error.Status}");
        }

        Assert.False(File.Exists(env.Directory.Combine("RECOVERYHISTORY")), $"{outside} was copied out through GetWal");

        // restore_command writes only pg_wal/RECOVERYXLOG|RECOVERYHISTORY|<missing segment> of a data directory:
        // never over a live file. The segment is archived, so any accepted destination would be overwritten.
        var segment = await env.Postgres.SwitchWalAsync();
        await env.Postgres.WaitForArchivedAsync(segment, TimeSpan.FromSeconds(30));
        var data = env.Postgres.DataDirectory;
        var liveSegment = Path.Combine(data, "pg_wal", segment);
        string[] protectedFiles = [Path.Combine(data, "postgresql.conf"), liveSegment, env.Directory.Combine("RECOVERYXLOG")];
        var before = protectedFiles.Select(f => File.Exists(f) ? File.ReadAllBytes(f) : []).ToList();
        foreach (var destination in protectedFiles.Append(Path.Combine(data, "pg_wal/archive_status/RECOVERYXLOG")))
        {
            var error = await Assert.ThrowsAsync<RpcException>(async () => await client.GetWalAsync(
                new GetWalRequest { Name = segment, Destination = destination }));
            Assert.True(error.StatusCode is StatusCode.InvalidArgument or StatusCode.FailedPrecondition, $"GetWal to '{destination}': {error.Status}");
        }

        Assert.Equal(before, protectedFiles.Select(f => File.Exists(f) ? File.ReadAllBytes(f) : []).ToList());

        const string NotArchived = "0000000100000000000000F0";
        var recoveryXlog = Path.Combine(data, "pg_wal", "RECOVERYXLOG");
        var reply = await client.GetWalAsync(new GetWalRequest { Name = NotArchived, Destination = recoveryXlog });
        Assert.False(reply.Found);
        Assert.False(File.Exists(recoveryXlog));

        var get = await OsCommand.RunAsPostgresAsync(
            HarnessPaths.ArchiveClient,
            ["--socket", env.Agent.ArchiveSocket, "get", NotArchived, recoveryXlog],
            new CommandOptions { Timeout = TimeSpan.FromSeconds(30) });
        Assert.True(get.ExitCode == 1, get.ToString());
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>The WAL segment names stored in repo1 for this stanza, sorted (history and backup files excluded).</summary>
    private static List<string> ArchivedSegments(TestEnvironment env)
    {
        var stanzaArchive = Path.Combine(env.Agent.RepositoryPath, "archive", env.Stanza);
        var archiveId = Assert.Single(Directory.GetDirectories(stanzaArchive, "15-*"));
        return Directory.EnumerateDirectories(archiveId)
            .Where(d => WalDirectory().IsMatch(Path.GetFileName(d)))
            .SelectMany(Directory.EnumerateFiles)
            .Select(f => ArchivedSegmentFile().Match(Path.GetFileName(f)))
            .Where(m => m.Success)
            .Select(m => m.Groups[1].Value)
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Each segment follows the previous one (same timeline, next number), and <paramref name="lastArchived"/> is among them.</summary>
    private static void AssertContinuous(IReadOnlyList<string> segments, string lastArchived)
    {
        Assert.NotEmpty(segments);
        var holes = new List<string>();
        for (var i = 1; i < segments.Count; i++)
        {
            var (previousTimeline, previous) = ParseSegment(segments[i - 1]);
            var (timeline, number) = ParseSegment(segments[i]);
            if (timeline != previousTimeline || number != previous + 1)
            {
                holes.Add($"{segments[i - 1]} -> {segments[i]}");
            }
        }

        Assert.True(holes.Count == 0,
            $"the archive is not continuous ({segments[0]}..{segments[^1]}, {segments.Count} files): {string.Join(", ", holes)}");
        Assert.Contains(lastArchived, segments);
    }

    /// <summary>Timeline and absolute segment number of a 16 MiB segment name (256 segments per log id).</summary>
    private static (uint Timeline, ulong Number) ParseSegment(string name) => (
        uint.Parse(name.AsSpan(0, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture),
        (ulong.Parse(name.AsSpan(8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture) << 8)
            + ulong.Parse(name.AsSpan(16, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture));

    /// <summary>Polls /proc until a child of <paramref name="parentPid"/> has <paramref name="marker"/> in its command line.</summary>
    private static async Task<bool> WaitForChildProcessAsync(int parentPid, string marker, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            foreach (var proc in Directory.EnumerateDirectories("/proc"))
            {
                try
                {
                    // /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may contain spaces, so parse after the last ')'.
                    var stat = File.ReadAllText(Path.Combine(proc, "stat"));
                    var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                    if (fields.Length > 1 && fields[1] == parentPid.ToString(CultureInfo.InvariantCulture)
                        && File.ReadAllText(Path.Combine(proc, "cmdline")).Contains(marker, StringComparison.Ordinal))
                    {
                        return true;
                    }
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Not a process directory, or the process exited meanwhile.
                }
            }

            await Task.Delay(5);
        }

        return false;
    }

    private static int ReadyFiles(PostgresCluster postgres) =>
        Directory.EnumerateFiles(Path.Combine(postgres.DataDirectory, "pg_wal", "archive_status"), "*.ready").Count();

    private static async Task<(long FailedCount, string LastArchivedWal)> ReadArchiverAsync(PostgresCluster postgres)
    {
        await using var connection = await postgres.OpenAsync();
        await using var command = new NpgsqlCommand(
            "select failed_count, coalesce(last_archived_wal, '') from pg_stat_archiver", connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), reader.GetString(1));
    }

    /// <summary>
    /// With archive-push-queue-max set, pgBackRest drops WAL once the queue is too long and exits 0: PostgreSQL
    /// then recycles a segment that was never archived. The agent must count each drop (status and metric) and
    /// log it as an error, never as a successful push.
    /// </summary>
    [Fact]
    public async Task PushWal_QueueMaxExceededWhileRepositoryFails_DropIsCountedAndNotReportedAsPushed()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            AgentSettings = new Dictionary<string, string?>
            {
                // Sync pushes check the queue on every call (2.45's async mode checks it only per batch).
                ["Agent__PgBackRest__ArchiveAsync"] = "false",
                ["Agent__PgBackRest__ArchivePushQueueMax"] = "32MiB",
            },
        });
        await env.Client.CreateStanzaAsync(new CreateStanzaRequest());
        var pushedBefore = (await env.Client.GetStatusAsync(new GetStatusRequest())).Archive.Repositories.Single().Pushed;

        var stanzaArchive = Path.Combine(env.Agent.RepositoryPath, "archive", env.Stanza);
        var originalMode = File.GetUnixFileMode(stanzaArchive);
        AgentStatus dropped;
        try
        {
            File.SetUnixFileMode(stanzaArchive, UnixFileMode.None);
            dropped = await PollAsync(
                async () =>
                {
                    await env.Postgres.SwitchWalAsync();
                    var s = await env.Client.GetStatusAsync(new GetStatusRequest());
                    return s.Archive.DroppedSegments > 0 ? s : null;
                },
                TimeSpan.FromSeconds(40),
                () => $"no dropped segment reported.\n{env.Agent.LogTail()}");
        }
        finally
        {
            File.SetUnixFileMode(stanzaArchive, originalMode);
        }

        Assert.Equal(pushedBefore, dropped.Archive.Repositories.Single().Pushed);
        Assert.Contains("DROPPED", env.Agent.LogTail(200));
        using var http = new HttpClient();
        var metrics = await http.GetStringAsync($"http://127.0.0.1:{env.Agent.MetricsPort}/metrics");
        Assert.Matches(@"pgbackrest_archive_push_dropped_segments_total\{stanza=""test""\} [1-9]", metrics);
    }

    /// <summary>Calls <paramref name="probe"/> until it returns non-null, or fails the test after <paramref name="timeout"/>.</summary>
    private static async Task<T> PollAsync<T>(Func<Task<T?>> probe, TimeSpan timeout, Func<string> describeFailure)
        where T : class
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (await probe() is { } result)
            {
                return result;
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"After {timeout.TotalSeconds:0} s: {describeFailure()}");
            }

            await Task.Delay(PollInterval);
        }
    }

    [GeneratedRegex("^[0-9A-F]{24}$")]
    private static partial Regex SegmentName();

    [GeneratedRegex("^[0-9A-F]{16}$")]
    private static partial Regex WalDirectory();

    // <segment>-<sha1>[.<compression>]; pgBackRest's temp files (.pgbackrest.tmp) do not match.
    [GeneratedRegex(@"^([0-9A-F]{24})-[0-9a-f]{40}(\.(gz|lz4|zst|bz2|xz))?$")]
    private static partial Regex ArchivedSegmentFile();

    /// <summary>
    /// One connection inserting a monotonic counter, one committed statement at a time, and counting the
    /// inserts PostgreSQL acknowledged: after <see cref="StopAsync"/> the table holds exactly that many rows.
    /// </summary>
    private sealed class CounterWriter : IAsyncDisposable
    {
        private readonly NpgsqlConnection _connection;
        private readonly Task _loop;
        private volatile bool _stop;
        private long _committed;

        private CounterWriter(NpgsqlConnection connection)
        {
            _connection = connection;
            _loop = Task.Run(RunAsync);
        }

        public long Committed => Interlocked.Read(ref _committed);

        public static async Task<CounterWriter> StartAsync(PostgresCluster postgres) => new(await postgres.OpenAsync());

        public async Task WaitForCommitsAsync(long count, TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (Committed < count)
            {
                if (_loop.IsCompleted)
                {
                    await _loop;
                    throw new InvalidOperationException("The writer stopped.");
                }

                if (clock.Elapsed > timeout)
                {
                    throw new TimeoutException($"Only {Committed} of {count} inserts committed within {timeout.TotalSeconds:0} s.");
                }

                await Task.Delay(50);
            }
        }

        /// <summary>Stops after the statement in flight (never cancels one, whose outcome would be unknown).</summary>
        public async Task<long> StopAsync()
        {
            _stop = true;
            await _loop;
            return Committed;
        }

        public async ValueTask DisposeAsync()
        {
            _stop = true;
            try
            {
                await _loop;
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or InvalidOperationException)
            {
                // Already reported by StopAsync, or the test failed before it.
            }

            await _connection.DisposeAsync();
        }

        private async Task RunAsync()
        {
            await using var insert = new NpgsqlCommand("insert into t (n) select coalesce(max(n), 0) + 1 from t", _connection);
            while (!_stop)
            {
                if (await insert.ExecuteNonQueryAsync() == 1)
                {
                    Interlocked.Increment(ref _committed);
                }
            }
        }
    }
}
