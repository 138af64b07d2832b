using System.Diagnostics;
using System.Text.RegularExpressions;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.PgBackRest;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core.Archive;

public sealed record RepositoryArchiveStats(
    int Repo,
    long Pushed,
    long Failed,
    long Bytes,
    string? LastError,
    DateTimeOffset? LastErrorTime,
    DateTimeOffset? LastSuccessTime);

public sealed record ArchiveStats(
    IReadOnlyList<RepositoryArchiveStats> Repositories,
    string? LastArchivedWal,
    DateTimeOffset? LastArchivedTime,
    long DroppedSegments,
    IReadOnlyList<double> RecentPushSeconds)
{
    /// <summary>
    /// The repositories whose latest push failed: PostgreSQL keeps the segment for all of them (a push succeeds only
    /// when every repository stored it), so these are the ones blocking archiving.
    /// </summary>
    public IReadOnlyList<int> BlockingRepos => Repositories
        .Where(r => r.LastErrorTime is { } failed && (r.LastSuccessTime is not { } ok || failed > ok))
        .Select(r => r.Repo).ToList();
}

/// <summary>
/// PostgreSQL's archive_command and restore_command, run through pgBackRest. A push succeeds only
/// when pgBackRest stored the segment in every repository; anything else fails so PostgreSQL keeps it.
/// </summary>
public sealed partial class ArchiveService(
    PgBackRestClient pgBackRest,
    AgentOptions options,
    TimeProvider time,
    Status.StatusCache repositories,
    ILogger<ArchiveService> logger)
{
    private const int LatencySamples = 256;

    private readonly object _gate = new();
    private readonly RepositoryArchiveStats[] _repos = Enumerable.Range(1, options.Repositories.Count)
        .Select(r => new RepositoryArchiveStats(r, 0, 0, 0, null, null, null)).ToArray();
    private readonly Queue<double> _latencies = new();
    private string? _lastArchivedWal;
    private DateTimeOffset? _lastArchivedTime;
    private long _dropped;

    public async Task<IReadOnlyList<string>> PushAsync(string path, CancellationToken cancellationToken)
    {
        if (!Path.IsPathFullyQualified(path))
        {
            throw AgentException.InvalidArgument($"WAL path '{path}' must be absolute (the archive client resolves %p against the data directory).");
        }

        var name = Path.GetFileName(path);
        if (!WalFileName().IsMatch(name))
        {
            throw AgentException.InvalidArgument($"'{name}' is not a WAL segment, history or backup label file name.");
        }

        var file = new FileInfo(path);
        if (!file.Exists)
        {
            throw AgentException.NotFound($"WAL file '{path}' does not exist where the agent looks.",
                "The agent must mount the PostgreSQL data volume at the same path as the PostgreSQL container.");
        }

        // pgBackRest archives this cluster's pg_wal only (its async push asserts on any other directory).
        var walDirectory = Path.Combine(options.Postgres.DataDirectory, "pg_wal");
        if (RealPath.Of(Path.GetDirectoryName(path)!) is not { } directory || directory != RealPath.Of(walDirectory))
        {
            throw AgentException.InvalidArgument($"WAL file '{path}' is not in {walDirectory}: the agent archives only its own cluster's WAL.");
        }

        var clock = Stopwatch.StartNew();
        List<string> warnings;
        if (AsyncStatus(name) is { } alreadyPushed)
        {
            warnings = alreadyPushed;
        }
        else
        {
            // PostgreSQL asks only for segments it marked ready; pgBackRest's async push has nothing to do for others.
            if (!File.Exists(Path.Combine(walDirectory, "archive_status", name + ".ready")))
            {
                throw AgentException.FailedPrecondition(
                    $"'{name}' is not waiting to be archived (no pg_wal/archive_status/{name}.ready).",
                    "Only PostgreSQL's archive_command should push WAL; it does so for segments marked .ready.");
            }

            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(options.PgBackRest.ArchiveCommandTimeoutSeconds));
            ProcessResult result;
            try
            {
                result = await pgBackRest.RunAsync("archive-push", [path], timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                var error = new AgentException(AgentErrorKind.DeadlineExceeded,
                    $"archive-push of {name} did not finish within {options.PgBackRest.ArchiveCommandTimeoutSeconds} s and was stopped.",
                    "Check that every repository is reachable; PostgreSQL keeps the segment and retries.");
                RecordFailure(error.Message, null);
                throw error;
            }

            warnings = PgBackRestErrors.Warnings(result.Stderr).ToList();
            if (result.ExitCode != 0)
            {
                var error = PgBackRestErrors.FromFailure("archive-push", result.ExitCode, result.Stderr);
                RecordFailure(error.Message, result.Stderr);
                Log.PushFailed(logger, name, result.ExitCode, error.Message);
                throw error;
            }
        }

        var dropped = warnings.Where(w => w.Contains("dropped WAL file", StringComparison.Ordinal)).ToList();
        if (dropped.Count > 0)
        {
            // archive-push-queue-max was exceeded: pgBackRest exits 0 but the segment is NOT archived.
            // PostgreSQL will recycle it; it is counted as dropped, never as pushed.
            Interlocked.Add(ref _dropped, dropped.Count);
            Log.SegmentDropped(logger, name, dropped[0]);
            return warnings;
        }

        RecordSuccess(name, file.Length, clock.Elapsed.TotalSeconds);
        return warnings;
    }

    /// <summary>
    /// pgBackRest's async push writes <c>&lt;spool&gt;/archive/&lt;stanza&gt;/out/&lt;segment&gt;.ok</c> once the segment is
    /// stored in every repository (empty, or "code\nwarning"); its foreground archive-push only looks for that
    /// file and exits. While a batch is being pushed ahead, the agent reads the file itself and saves a
    /// process start per segment, which is what lets it keep up with a busy primary. The file protocol is the
    /// same from 2.45 to 2.59. Null when the segment is not known to be pushed: pgBackRest is then run.
    /// </summary>
    private List<string>? AsyncStatus(string name)
    {
        if (!options.PgBackRest.ArchiveAsync)
        {
            return null;
        }

        string content;
        try
        {
            content = File.ReadAllText(Path.Combine(options.PgBackRest.SpoolPath, "archive", options.Stanza, "out", name + ".ok"));
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // let pgBackRest look and report
        }

        var newline = content.IndexOf('\n', StringComparison.Ordinal);
        if (content.Length == 0 || newline < 0)
        {
            return [];
        }

        var message = content[(newline + 1)..].Trim();
        return int.TryParse(content[..newline], out var code) && code != 0
            ? [$"WAL segment '{name}' was not pushed due to error [{code}] and was manually skipped: {message}"]
            : [message];
    }

    /// <summary>True when found; false when the archive does not hold the file (restore_command then exits 1).</summary>
    public async Task<bool> GetAsync(string name, string destination, CancellationToken cancellationToken)
    {
        // The pattern already admits timeline history files; anything else ending in ".history" (a path such as
        // "../../x.history") must not reach pgBackRest, which joins the name to a repository path.
        if (!WalFileName().IsMatch(name))
        {
            throw AgentException.InvalidArgument($"'{name}' is not a WAL segment or history file name.");
        }

        if (!Path.IsPathFullyQualified(destination) || destination.Any(char.IsControl))
        {
            throw AgentException.InvalidArgument($"Destination '{destination}' must be an absolute path without control characters.");
        }

        // What is checked is what is written: '..' is resolved here, not later by the kernel after a symlink.
        destination = Path.GetFullPath(destination);
        var dataDirectory = CheckDestination(name, destination);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(TimeSpan.FromSeconds(options.PgBackRest.ArchiveCommandTimeoutSeconds));
        ProcessResult result;
        try
        {
            result = await pgBackRest.RunAsync("archive-get", [.. GetMode(dataDirectory), name, destination], timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Without this the interceptor sees a bare cancellation and answers INTERNAL.
            throw new AgentException(AgentErrorKind.DeadlineExceeded,
                $"archive-get of {name} did not finish within {options.PgBackRest.ArchiveCommandTimeoutSeconds} s and was stopped.",
                "Check that the repository is reachable.");
        }

        if (result.ExitCode is 0 or 1)
        {
            return result.ExitCode == 0;
        }

        // PostgreSQL reads a failed restore_command as the end of the archive and would end recovery early: every failure
        // other than "not found" is reported as UNAVAILABLE, which the archive client retries before giving up.
        var error = PgBackRestErrors.FromFailure("archive-get", result.ExitCode, result.Stderr);
        throw new AgentException(AgentErrorKind.Unavailable, error.Message, error.Hint, error.PgBackRestCode);
    }

    /// <summary>
    /// restore_command writes where PostgreSQL says: pg_wal/RECOVERYXLOG or pg_wal/RECOVERYHISTORY in a data
    /// directory (the agent's own cluster, or a clone or standby restored beside it), or a missing segment under
    /// its own name (pg_rewind). Anything else could overwrite a live file, so it is refused. Returns the data directory.
    /// </summary>
    private static string CheckDestination(string name, string destination)
    {
        var walDirectory = Path.GetDirectoryName(destination)!;
        var dataDirectory = Path.GetDirectoryName(walDirectory);
        var file = Path.GetFileName(destination);
        if (Path.GetFileName(walDirectory) is not ("pg_wal" or "pg_xlog") || dataDirectory is null || !(file is "RECOVERYXLOG" or "RECOVERYHISTORY" || file == name))
        {
            throw AgentException.InvalidArgument(
                $"Destination '{destination}' is not a restore_command target: use <data directory>/pg_wal/RECOVERYXLOG, RECOVERYHISTORY or {name}.");
        }

        if (!File.Exists(Path.Combine(dataDirectory, "PG_VERSION")))
        {
            throw AgentException.FailedPrecondition($"'{dataDirectory}' holds no PostgreSQL cluster (no PG_VERSION) where the agent looks.",
                "The agent must mount the PostgreSQL data volume at the same path as the PostgreSQL container.");
        }

        if (file == name && File.Exists(destination))
        {
            throw AgentException.FailedPrecondition($"'{destination}' already exists: the agent does not overwrite WAL in pg_wal.",
                "Remove it first if it is damaged.");
        }

        return dataDirectory;
    }

    /// <summary>
    /// Async archive-get (prefetch) only for the agent's own cluster, which does not push WAL while it
    /// recovers. A clone or standby restored into another directory beside the live primary fetches
    /// synchronously: async get and async push take the same stanza archive lock and would stall each
    /// other (a blocked push holds up the primary's archiver for archive-timeout).
    /// </summary>
    private IEnumerable<string> GetMode(string dataDirectory)
    {
        // The client's paths come from its working directory, which the kernel reports with symlinks resolved. The data
        // directory is compared, not pg_wal, which may be a symlink to another volume.
        var own = Path.TrimEndingDirectorySeparator(RealPath.Of(options.Postgres.DataDirectory) ?? Path.GetFullPath(options.Postgres.DataDirectory)) + "/";
        var target = Path.TrimEndingDirectorySeparator(RealPath.Of(dataDirectory) ?? dataDirectory) + "/";
        return options.PgBackRest.ArchiveAsync && target.StartsWith(own, StringComparison.Ordinal)
            ? []
            : ["--no-archive-async"];
    }

    public ArchiveStats GetStats()
    {
        lock (_gate)
        {
            return new ArchiveStats(_repos.ToList(), _lastArchivedWal, _lastArchivedTime, Interlocked.Read(ref _dropped), _latencies.ToList());
        }
    }

    private void RecordSuccess(string name, long bytes, double seconds)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            for (var i = 0; i < _repos.Length; i++)
            {
                _repos[i] = _repos[i] with { Pushed = _repos[i].Pushed + 1, Bytes = _repos[i].Bytes + bytes, LastSuccessTime = now };
            }

            _lastArchivedWal = name;
            _lastArchivedTime = now;
            _latencies.Enqueue(seconds);
            if (_latencies.Count > LatencySamples)
            {
                _latencies.Dequeue();
            }
        }
    }

    /// <summary>
    /// pgBackRest names the failing repositories ("repo2: [HostConnectError] ..."); the others stored the
    /// segment. With none named, those the probes find unreachable; failing that, all of them.
    /// </summary>
    private void RecordFailure(string message, string? stderr)
    {
        var now = time.GetUtcNow();
        var named = stderr is null ? new HashSet<int>() : PgBackRestErrors.NamedRepositories(stderr);
        if (named.Count == 0)
        {
            // A timeout (the async push still retrying a dead repository) names none: blame the repositories the
            // probes find unreachable, so a healthy repo1 is not charged for a dead repo2.
            named = repositories.Snapshot().Repositories.Where(r => !r.Reachable).Select(r => r.Repo).ToHashSet();
        }

        lock (_gate)
        {
            for (var i = 0; i < _repos.Length; i++)
            {
                if (named.Count == 0 || named.Contains(i + 1))
                {
                    _repos[i] = _repos[i] with { Failed = _repos[i].Failed + 1, LastError = message, LastErrorTime = now };
                }
            }
        }
    }

    [GeneratedRegex(@"^([0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)\z")]
    private static partial Regex WalFileName();

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.ArchivePushFailed, EventName = nameof(LogEvents.ArchivePushFailed), Level = LogLevel.Warning,
            Message = "archive-push {Segment} failed with exit code {ExitCode}: {Error}")]
        public static partial void PushFailed(ILogger logger, string segment, int exitCode, string error);

        [LoggerMessage(EventId = LogEvents.ArchiveSegmentDropped, EventName = nameof(LogEvents.ArchiveSegmentDropped), Level = LogLevel.Error,
            Message = "WAL segment {Segment} was DROPPED by pgBackRest (archive-push-queue-max exceeded); point-in-time recovery is broken until the next backup: {Warning}")]
        public static partial void SegmentDropped(ILogger logger, string segment, string warning);
    }
}
