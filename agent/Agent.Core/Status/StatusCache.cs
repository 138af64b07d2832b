using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Continuity;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Repositories;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core.Status;

/// <summary>What pgBackRest info last said about one repository, and whether the last attempt failed.</summary>
public sealed record RepositoryInfoRead(StanzaInfo? Info, DateTimeOffset? ReadAt, string? Error, DateTimeOffset? ErrorAt)
{
    /// <summary>The catalog of <see cref="Info"/> per backup type, computed when the read was stored; null before.</summary>
    public BackupSummary? Summary { get; init; }

    /// <summary>The recovery window <see cref="Info"/> gives (<see cref="Restore.RecoveryWindow.Of"/>), computed when the read was stored.</summary>
    public Restore.RecoveryWindow? Window { get; init; }

    /// <summary>When info of this repository was last tried, whatever came of it; null while never.</summary>
    public DateTimeOffset? TriedAt => ReadAt > ErrorAt || ErrorAt is null ? ReadAt : ErrorAt;

    /// <summary>The repository's own status code (0 ok, 1 missing stanza path, 2 no valid backups, 3 missing stanza data, ...).</summary>
    public int? StatusCode => Info is null ? null : Info.Repositories.FirstOrDefault()?.StatusCode ?? Info.StatusCode;
}

/// <summary>One repository as the cache knows it: its kind, its last info read and its last probe.</summary>
public sealed record CachedRepository(int Repo, string Type, RepositoryInfoRead Read, ProbeResult? Probe)
{
    /// <summary>The repository's archive as last listed after an info read; null before, or when nothing is archived.</summary>
    public ArchiveContinuity? Continuity { get; init; }

    /// <summary>Why the last listing of the archive failed, when it did (<see cref="Continuity"/> is then older or null).</summary>
    public string? ContinuityError { get; init; }

    /// <summary>False when the last probe failed; true when it succeeded or none ran yet (unknown is not dead).</summary>
    public bool Reachable => Probe?.Reachable != false;
}

/// <summary>An immutable view of the cache. Every reader (status, lists, windows, metrics) answers from one of these.</summary>
public sealed record StatusSnapshot(string Stanza, IReadOnlyList<CachedRepository> Repositories)
{
    /// <summary>Every repository's last info in one stanza view; null while none has been read.</summary>
    public StanzaInfo? Info => Merge(Stanza, Repositories.Select(r => r.Read.Info).OfType<StanzaInfo>().ToList());

    /// <summary>When the oldest info in <see cref="Info"/> was read: how old the answer's data is.</summary>
    public DateTimeOffset? InfoReadAt => Repositories.All(r => r.Read.ReadAt is not null) ? Repositories.Min(r => r.Read.ReadAt) : null;

    /// <summary>Why repositories' info could not be read, one clause each; null when all were read at their last try.</summary>
    public string? InfoError
    {
        get
        {
            var failed = Repositories.Where(r => r.Read.Error is not null || r.Read.ReadAt is null).Select(r => r.Read.Error is { } e
                ? $"repo{r.Repo}: {e}" + (r.Read.ReadAt is { } at ? $" (showing its info from {at:yyyy-MM-dd HH:mm:ss} UTC)" : "")
                : $"repo{r.Repo}: not read yet").ToList();
            return failed.Count == 0 ? null : string.Join("; ", failed);
        }
    }

    /// <summary>Repositories where pgBackRest reports the stanza missing (1 missing stanza path, 3 missing stanza data).</summary>
    public IReadOnlyList<int> StanzaMissingIn => Repositories.Where(r => r.Read.StatusCode is 1 or 3).Select(r => r.Repo).ToList();

    /// <summary>
    /// Repositories whose info was not even tried (read or failed) within <paramref name="limit"/>: the refresh is not
    /// running for them. One never tried counts from <paramref name="since"/> (start-up), so a new agent is fresh.
    /// </summary>
    public IReadOnlyList<int> NotTriedWithin(TimeSpan limit, DateTimeOffset now, DateTimeOffset since) =>
        Repositories.Where(r => now - (r.Read.TriedAt ?? since) > limit).Select(r => r.Repo).ToList();

    internal static StanzaInfo? Merge(string stanza, IReadOnlyList<StanzaInfo> parts)
    {
        if (parts.Count == 0)
        {
            return null;
        }

        var codes = parts.Select(p => (p.StatusCode, p.StatusMessage)).Distinct().ToList();
        var (code, message) = codes.Count == 1 ? codes[0] : (4, "different across repos");
        return new StanzaInfo(
            stanza, code, message,
            new LockInfo(parts.Any(p => p.BackupLock.Held), parts.Select(p => p.BackupLock.Size).Max(), parts.Select(p => p.BackupLock.SizeComplete).Max()),
            parts.Select(p => p.RestoreLock).FirstOrDefault(l => l is not null),
            parts.SelectMany(p => p.Databases).ToList(),
            parts.SelectMany(p => p.Archives).ToList(),
            parts.SelectMany(p => p.Repositories).OrderBy(r => r.Key).ToList(),
            parts.SelectMany(p => p.Backups).OrderBy(b => b.Start).ThenBy(b => b.RepoKey).ToList());
    }
}

/// <summary>
/// The agent's knowledge of its repositories, kept fresh by <see cref="StatusRefreshLoop"/>: per repository a
/// <c>pgbackrest info --repo=N</c> under a deadline and a reachability probe, each running on its own, so one dead
/// repository delays nothing but its own entry. Readers never start pgBackRest; they get a snapshot and its age.
/// </summary>
public sealed partial class StatusCache
{
    private readonly AgentOptions _options;
    private readonly PgBackRestClient _pgBackRest;
    private readonly ArchiveContinuityScanner _continuity;
    private readonly TimeProvider _time;
    private readonly ILogger<StatusCache> _logger;
    private readonly Slot[] _slots;
    private readonly Lock _gate = new();

    public StatusCache(AgentOptions options, PgBackRestClient pgBackRest, ArchiveContinuityScanner continuity, TimeProvider time, ILogger<StatusCache> logger)
    {
        _options = options;
        _pgBackRest = pgBackRest;
        _continuity = continuity;
        _time = time;
        _logger = logger;
        _slots = options.Repositories.Select((r, i) => new Slot(i + 1, r)).ToArray();
        pgBackRest.InfoRead += Store;
    }

    /// <summary>
    /// How long a repository may go without an info attempt before the cache counts as stale: one interval may pass
    /// while the previous read still runs to its deadline, so two intervals plus that deadline, plus a margin.
    /// </summary>
    public static TimeSpan FreshnessLimit(StatusOptions status) => TimeSpan.FromSeconds(2 * status.IntervalSeconds + status.InfoTimeoutSeconds + 5);

    public StatusSnapshot Snapshot()
    {
        lock (_gate)
        {
            return new StatusSnapshot(_options.Stanza, _slots.Select(s => new CachedRepository(s.Repo, s.Options.Type, s.Read, s.Probe)
            {
                Continuity = s.Continuity,
                ContinuityError = s.ContinuityError,
            }).ToList());
        }
    }

    /// <summary>
    /// Starts an info read and a probe of every repository that has none running; returns at once. The archive is listed
    /// after the read when <paramref name="listArchives"/>, else when its listing is due (see <see cref="ContinuityDue"/>).
    /// </summary>
    public void StartRefresh(CancellationToken stopping, bool listArchives = false)
    {
        lock (_gate)
        {
            foreach (var slot in _slots)
            {
                if (slot.InfoTask is not { IsCompleted: false })
                {
                    slot.InfoTask = Task.Run(() => ReadInfoAsync(slot, listArchives, stopping), stopping);
                }

                if (slot.ProbeTask is not { IsCompleted: false })
                {
                    slot.ProbeTask = Task.Run(() => ProbeAsync(slot, stopping), stopping);
                }
            }
        }
    }

    /// <summary>Refreshes now (archive listings included) and waits for every repository's info and probe (each bounded by its own deadline).</summary>
    public async Task RefreshAsync(CancellationToken cancellationToken)
    {
        StartRefresh(CancellationToken.None, listArchives: true);
        await Task.WhenAll(Running()).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Like <see cref="RefreshAsync"/>, but reads already under way are waited for and then followed by new ones, so the
    /// answer reflects the repositories as they are after the call (check uses it: a read started before a segment was
    /// removed must not clear the archive).
    /// </summary>
    public async Task RefreshAfterRunningAsync(CancellationToken cancellationToken)
    {
        await Task.WhenAll(Running()).WaitAsync(cancellationToken).ConfigureAwait(false);
        await RefreshAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits until every repository's info was tried once (at most its deadline), so that the first list after a
    /// start is not empty only because the cache was. Later calls return at once.
    /// </summary>
    public async Task WaitForFirstReadAsync(CancellationToken cancellationToken)
    {
        Task[] first;
        lock (_gate)
        {
            first = _slots.Select(s => s.FirstRead.Task).ToArray();
        }

        await Task.WhenAll(first).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private IEnumerable<Task> Running()
    {
        lock (_gate)
        {
            return _slots.SelectMany(s => new[] { s.InfoTask, s.ProbeTask }).OfType<Task>().ToList();
        }
    }

    /// <summary>
    /// Reads one repository's info now (<c>pgbackrest info --repo=N</c> under the cache's deadline), keeps it and returns
    /// that repository's part: what an operation on repository N checks, so another repository, dead or slow, cannot
    /// delay it. A read that fails or outlives the deadline is recorded in status and thrown as UNAVAILABLE.
    /// </summary>
    public async Task<StanzaInfo> RefreshRepositoryAsync(int repo, CancellationToken cancellationToken)
    {
        var (info, error, failure) = await ReadAsync(_slots[repo - 1], cancellationToken).ConfigureAwait(false);
        return info is not null ? ForRepository(info, repo)
            // pgBackRest's own error keeps its kind and hint; a deadline or a crash becomes UNAVAILABLE.
            : throw failure as AgentException ?? new AgentException(AgentErrorKind.Unavailable, $"Could not read repo{repo}'s backups: {error}",
                $"Check that repo{repo} answers (backrestctl status names its error class), then try again.");
    }

    /// <summary>
    /// For an operation that may use any repository: reads every repository the probes find reachable now, in parallel
    /// (each under the deadline), and answers with those reads beside the last known info of the others. Null when no
    /// repository's info was ever read.
    /// </summary>
    public async Task<StanzaInfo?> RefreshReachableAsync(CancellationToken cancellationToken)
    {
        var reachable = Snapshot().Repositories.Where(r => r.Reachable).Select(r => _slots[r.Repo - 1]);
        await Task.WhenAll(reachable.Select(slot => ReadAsync(slot, cancellationToken))).ConfigureAwait(false);
        return Snapshot().Info;
    }

    private async Task ReadInfoAsync(Slot slot, bool listArchive, CancellationToken stopping)
    {
        try
        {
            // A failure is recorded in the slot and logged; status shows it.
            var (info, _, _) = await ReadAsync(slot, stopping).ConfigureAwait(false);
            if (info is not null && (listArchive || ContinuityDue(slot, info)))
            {
                await ScanContinuityAsync(slot, info, stopping).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // The agent is stopping.
        }
        finally
        {
            slot.FirstRead.TrySetResult();
        }
    }

    /// <summary>
    /// One info read under the deadline: Store() keeps a success (through the client's InfoRead event); a failure is
    /// recorded in the slot, logged and returned as its error.
    /// </summary>
    private async Task<(StanzaInfo? Info, string? Error, Exception? Failure)> ReadAsync(Slot slot, CancellationToken cancellationToken)
    {
        var limit = TimeSpan.FromSeconds(_options.Status.InfoTimeoutSeconds);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        string error;
        Exception? failure = null;
        try
        {
            return (await _pgBackRest.InfoAsync(deadline.Token, slot.Repo).ConfigureAwait(false), null, null);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            error = $"pgbackrest info --repo={slot.Repo} did not answer within {limit.TotalSeconds:0} s and was stopped";
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            (error, failure) = (ex.Message, ex);
        }

        lock (_gate)
        {
            slot.Read = slot.Read with { Error = error, ErrorAt = _time.GetUtcNow() };
        }

        Log.InfoFailed(_logger, slot.Repo, error);
        return (null, error, failure);
    }

    /// <summary>
    /// Listing a repository's archive reads every segment's name: the loop does it every
    /// Agent:Status:ContinuityIntervalSeconds, or at once when the backups a gap is measured from changed.
    /// </summary>
    private bool ContinuityDue(Slot slot, StanzaInfo info)
    {
        var key = BackupSpan(info, slot.Repo);
        lock (_gate)
        {
            return slot.ContinuityKey != key || slot.Continuity is not { } last ||
                   _time.GetUtcNow() - last.CheckedAt >= TimeSpan.FromSeconds(_options.Status.ContinuityIntervalSeconds);
        }
    }

    /// <summary>The repository's oldest and newest backup: the gap search starts at the first, and a new one is worth a look.</summary>
    private static string BackupSpan(StanzaInfo info, int repo)
    {
        var backups = info.Backups.Where(b => b.RepoKey == repo).ToList();
        return $"{backups.MinBy(b => b.Start)?.Label}|{backups.MaxBy(b => b.Start)?.Label}";
    }

    /// <summary>
    /// Lists the archive after an info read, when due (under a deadline of its own) to find gaps; a failed listing keeps the
    /// last result and says why. Logs when a gap appears, changes or closes.
    /// </summary>
    private async Task ScanContinuityAsync(Slot slot, StanzaInfo info, CancellationToken stopping)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        deadline.CancelAfter(TimeSpan.FromSeconds(_options.Status.InfoTimeoutSeconds));
        ArchiveContinuity? continuity;
        try
        {
            continuity = await _continuity.ScanAsync(slot.Repo, info, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stopping.IsCancellationRequested)
        {
            var error = ex is OperationCanceledException
                ? $"listing repo{slot.Repo}'s archive did not finish within {_options.Status.InfoTimeoutSeconds} s"
                : ex.Message;
            lock (_gate)
            {
                slot.ContinuityError = error;
            }

            Log.ContinuityScanFailed(_logger, slot.Repo, error);
            return;
        }

        ArchiveContinuity? previous;
        lock (_gate)
        {
            previous = slot.Continuity;
            slot.Continuity = continuity;
            slot.ContinuityError = null;
            slot.ContinuityKey = BackupSpan(info, slot.Repo);
        }

        var (before, now) = (previous?.Continuous == false ? previous.Describe() : null, continuity?.Continuous == false ? continuity.Describe() : null);
        if (now is not null && now != before)
        {
            Log.ArchiveGap(_logger, slot.Repo, now);
        }
        else if (now is null && before is not null)
        {
            Log.ArchiveGapClosed(_logger, slot.Repo, continuity?.Newest ?? "-");
        }
    }

    private async Task ProbeAsync(Slot slot, CancellationToken stopping)
    {
        var kind = RepositoryKind.Of(slot.Options);
        var result = await kind.ProbeAsync(slot.Options, RepositoryKind.KeyOf(slot.Repo - 1),
            TimeSpan.FromSeconds(_options.Status.ProbeTimeoutSeconds), _time, stopping).ConfigureAwait(false);
        ProbeResult? previous;
        lock (_gate)
        {
            previous = slot.Probe;
            slot.Probe = result;
        }

        if (!result.Reachable && previous?.Reachable != false)
        {
            Log.Unreachable(_logger, slot.Repo, kind.Type, ProbeResult.Name(result.ErrorClass ?? ProbeErrorClass.Other), result.Message ?? "");
        }
        else if (result.Reachable && previous?.Reachable == false)
        {
            Log.ReachableAgain(_logger, slot.Repo, kind.Type, result.Latency.TotalMilliseconds);
        }
    }

    /// <summary>Keeps an info read, whoever made it: split by repository, since a read of all covers each.</summary>
    private void Store(StanzaInfo info, int? repo, DateTimeOffset readAt)
    {
        lock (_gate)
        {
            foreach (var slot in _slots.Where(s => repo is null || s.Repo == repo))
            {
                var own = ForRepository(info, slot.Repo);
                slot.Read = new RepositoryInfoRead(own, readAt, null, null) { Summary = BackupSummary.Of(own), Window = Restore.RecoveryWindow.Of(own, slot.Repo) };
            }
        }

        foreach (var slot in _slots.Where(s => repo is null || s.Repo == repo))
        {
            slot.FirstRead.TrySetResult();
        }
    }

    /// <summary>One repository's part of an info read; the stanza status is that repository's own.</summary>
    internal static StanzaInfo ForRepository(StanzaInfo info, int repo)
    {
        var own = info.Repositories.FirstOrDefault(r => r.Key == repo);
        return info with
        {
            StatusCode = own?.StatusCode ?? info.StatusCode,
            StatusMessage = own?.StatusMessage ?? info.StatusMessage,
            Databases = info.Databases.Where(d => d.RepoKey == repo).ToList(),
            Archives = info.Archives.Where(a => a.RepoKey == repo).ToList(),
            Repositories = info.Repositories.Where(r => r.Key == repo).ToList(),
            Backups = info.Backups.Where(b => b.RepoKey == repo).ToList(),
        };
    }

    private sealed class Slot(int repo, RepositoryOptions options)
    {
        public int Repo { get; } = repo;
        public RepositoryOptions Options { get; } = options;
        public RepositoryInfoRead Read { get; set; } = new(null, null, null, null);
        public ProbeResult? Probe { get; set; }
        public ArchiveContinuity? Continuity { get; set; }
        public string? ContinuityError { get; set; }

        /// <summary>The oldest and newest backup when the archive was last listed.</summary>
        public string? ContinuityKey { get; set; }
        public Task? InfoTask { get; set; }
        public Task? ProbeTask { get; set; }
        public TaskCompletionSource FirstRead { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.RepositoryUnreachable, EventName = nameof(LogEvents.RepositoryUnreachable), Level = LogLevel.Warning,
            Message = "repo{Repo} ({Type}) is unreachable: {ErrorClass}: {Message}")]
        public static partial void Unreachable(ILogger logger, int repo, string type, string errorClass, string message);

        [LoggerMessage(EventId = LogEvents.RepositoryReachableAgain, EventName = nameof(LogEvents.RepositoryReachableAgain), Level = LogLevel.Information,
            Message = "repo{Repo} ({Type}) is reachable again ({LatencyMs:F0} ms)")]
        public static partial void ReachableAgain(ILogger logger, int repo, string type, double latencyMs);

        [LoggerMessage(EventId = LogEvents.RepositoryInfoFailed, EventName = nameof(LogEvents.RepositoryInfoFailed), Level = LogLevel.Warning,
            Message = "Reading repo{Repo}'s info failed; status shows its last known info with its age: {Error}")]
        public static partial void InfoFailed(ILogger logger, int repo, string error);

        [LoggerMessage(EventId = LogEvents.ArchiveGapFound, EventName = nameof(LogEvents.ArchiveGapFound), Level = LogLevel.Error,
            Message = "repo{Repo}: {Description}")]
        public static partial void ArchiveGap(ILogger logger, int repo, string description);

        [LoggerMessage(EventId = LogEvents.ArchiveGapClosed, EventName = nameof(LogEvents.ArchiveGapClosed), Level = LogLevel.Information,
            Message = "repo{Repo}'s archive is continuous again up to {Newest}")]
        public static partial void ArchiveGapClosed(ILogger logger, int repo, string newest);

        [LoggerMessage(EventId = LogEvents.ContinuityScanFailed, EventName = nameof(LogEvents.ContinuityScanFailed), Level = LogLevel.Warning,
            Message = "Listing repo{Repo}'s archive for gaps failed; status keeps the last result: {Error}")]
        public static partial void ContinuityScanFailed(ILogger logger, int repo, string error);
    }
}
