using System.Text.Json;
using System.Text.Json.Serialization;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Repositories;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core.Cluster;

/// <summary>What a lease object holds: who backs up into the repository, and until when the claim stands unrenewed.</summary>
public sealed record LeaseRecord(
    string Holder,
    string Token,
    string Stanza,
    int Repo,
    string Description,
    string? OperationId,
    DateTimeOffset Acquired,
    DateTimeOffset Renewed,
    DateTimeOffset Expires)
{
    public string Describe() =>
        $"{Holder} runs {Description}{(OperationId is null ? "" : $" (operation {OperationId})")} since {Acquired:u}; its lease expires {Expires:u} unless renewed";
}

/// <summary>A lease found in repository <see cref="LeaseRecord.Repo"/>: held by this agent (current) or read from the repository at <see cref="ReadAt"/>.</summary>
public sealed record ObservedLease(LeaseRecord Record, bool HeldHere, DateTimeOffset ReadAt);

[JsonSerializable(typeof(LeaseRecord))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class LeaseJson : JsonSerializerContext;

/// <summary>
/// One backup per stanza and repository across every agent of a cluster. pgBackRest's backup lock is a local file, so
/// two agents whose PostgreSQL both claim to be the primary (a failover caught half-way, a split brain), or two
/// schedules, could write one repository at once. Before a backup the agent creates
/// <c>&lt;repo path&gt;/backrest-agent/&lt;stanza&gt;/backup.lease</c> in the repository with the storage's
/// create-if-absent, renews it every third of <see cref="ClusterOptions.LeaseSeconds"/> while the backup runs and deletes
/// it after. Another agent finding it refuses, naming the holder; a lease left unrenewed past its expiry (its holder
/// died) is taken over with a conditional replace of the version read, so only one taker wins.
/// </summary>
public sealed partial class BackupLease(AgentOptions options, TimeProvider time, ILogger<BackupLease> logger)
{
    public static string ObjectName(string stanza) => $"backrest-agent/{stanza}/backup.lease";

    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(15);

    // The leases this process holds now, by token: a lease in our name with another token is an earlier run's.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, LeaseRecord> _held = new();

    // Per repository (index repo - 1): the lease last read there (null: none), and the read under way.
    private readonly Lock _gate = new();
    private readonly (LeaseRecord? Record, DateTimeOffset ReadAt)?[] _seen = new (LeaseRecord?, DateTimeOffset)?[options.Repositories.Count];
    private readonly Task?[] _reading = new Task?[options.Repositories.Count];

    /// <summary>How long a store that may ignore conditions is given before the read-back that shows who won.</summary>
    internal static TimeSpan SettleDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Claims repository <paramref name="repo"/> for a backup, or throws FAILED_PRECONDITION naming the holder. The
    /// handle renews until disposed; its <see cref="LeaseHandle.Lost"/> fires if another agent took the repository.
    /// </summary>
    public async Task<LeaseHandle> AcquireAsync(int repo, string description, CancellationToken cancellationToken)
    {
        var cluster = options.Cluster;
        if (!cluster.BackupLease)
        {
            return LeaseHandle.None;
        }

        var index = repo - 1;
        var settings = options.Repositories[index];
        var at = RepositoryKind.KeyOf(index);
        var store = RepositoryKind.Of(settings).OpenLeaseObject(settings, at, ObjectName(options.Stanza), CallTimeout);
        try
        {
            var now = time.GetUtcNow();
            var mine = new LeaseRecord(cluster.ResolveMember(), Guid.NewGuid().ToString("N"), options.Stanza, repo, description, null,
                now, now, now.AddSeconds(cluster.LeaseSeconds));
            for (var attempt = 0; attempt < 3; attempt++)
            {
                if (await store.TryCreateAsync(Serialize(mine), cancellationToken).ConfigureAwait(false))
                {
                    return await ConfirmAsync(store, mine, repo, cancellationToken).ConfigureAwait(false);
                }

                var current = await store.ReadAsync(cancellationToken).ConfigureAwait(false);
                if (current is null)
                {
                    continue; // released between our create and read: try again
                }

                var holder = Deserialize(current.Content);
                // A lease in this agent's name that this process does not hold was left by an earlier run of it (killed
                // during a backup): nothing renews it any more, so it is as good as expired.
                var leftByEarlierRun = holder is not null && holder.Holder == mine.Holder && !_held.ContainsKey(holder.Token);
                if (holder is not null && holder.Expires > time.GetUtcNow() && !leftByEarlierRun)
                {
                    throw Held(repo, holder);
                }

                // Expired unrenewed (its holder died or lost the repository), or unreadable: replace exactly that version.
                if (await store.TryReplaceAsync(Serialize(mine), current.Version, cancellationToken).ConfigureAwait(false))
                {
                    Log.LeaseTakenOver(logger, repo, holder?.Holder ?? "(unreadable lease)", holder?.Expires ?? DateTimeOffset.MinValue);
                    return await ConfirmAsync(store, mine, repo, cancellationToken).ConfigureAwait(false);
                }
            }

            throw new AgentException(AgentErrorKind.Aborted,
                $"repo{repo}'s backup lease changed hands three times while this agent tried to take it.", "Try again in a few seconds.");
        }
        catch (Exception ex) when (ex is not AgentException and not OperationCanceledException)
        {
            store.Dispose();
            var message = RepositoryKind.Scrub(ex.Message, RepositoryKind.Of(settings).SecretValues(settings, at));
            throw new AgentException(AgentErrorKind.Unavailable,
                $"Could not write the backup lease into repo{repo} ({ex.GetType().Name}: {message}), so no backup starts there.",
                "The repository is not writable or not reachable: backrestctl status names its probe's error; fix that and try again.");
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>
    /// On a store that may ignore the condition, a racing writer may have overwritten our lease: wait, read back, and keep
    /// the repository only if the lease is still ours (the last writer wins, the others see it and refuse).
    /// </summary>
    private async Task<LeaseHandle> ConfirmAsync(ILeaseObject store, LeaseRecord mine, int repo, CancellationToken cancellationToken)
    {
        if (!store.EnforcesConditions)
        {
            await Task.Delay(SettleDelay, time, cancellationToken).ConfigureAwait(false);
        }

        var current = await store.ReadAsync(cancellationToken).ConfigureAwait(false);
        var holder = current is null ? null : Deserialize(current.Content);
        if (current is null || holder?.Token != mine.Token)
        {
            throw holder is null
                ? new AgentException(AgentErrorKind.Aborted, $"repo{repo}'s backup lease vanished right after this agent wrote it.", "Try again.")
                : Held(repo, holder);
        }

        Log.LeaseAcquired(logger, repo, mine.Holder, mine.Expires);
        _held[mine.Token] = mine;
        return new LeaseHandle(this, store, mine, current.Version);
    }

    private AgentException Held(int repo, LeaseRecord holder) =>
        holder.Holder == options.Cluster.ResolveMember()
        ? new AgentException(AgentErrorKind.Aborted, $"repo{repo} is being backed up by this agent already: {holder.Describe()}.",
            "Wait for it to finish and try again.")
        : AgentException.FailedPrecondition(
            $"repo{repo} is being backed up by another agent of this cluster: {holder.Describe()}.",
            "Wait for that backup to end (backrestctl --cluster NAME:PORT status shows it), then try again. " +
            "If that agent is gone, its lease expires by itself.");

    internal static byte[] Serialize(LeaseRecord record) => JsonSerializer.SerializeToUtf8Bytes(record, LeaseJson.Default.LeaseRecord);

    internal static LeaseRecord? Deserialize(byte[] content)
    {
        try
        {
            return JsonSerializer.Deserialize(content, LeaseJson.Default.LeaseRecord);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Renews <paramref name="handle"/> until <paramref name="stop"/>; fires Lost when the lease is no longer ours.</summary>
    internal async Task RenewLoopAsync(LeaseHandle handle, CancellationToken stop)
    {
        var interval = TimeSpan.FromSeconds(options.Cluster.LeaseSeconds / 3.0);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, time, stop).ConfigureAwait(false);
                if (!await handle.RenewAsync(stop).ConfigureAwait(false))
                {
                    return;
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The storage is briefly unreachable: keep trying until the lease would expire, then give the repository up.
                Log.LeaseRenewFailed(logger, handle.Record.Repo, ex.Message);
                if (time.GetUtcNow() >= handle.Record.Expires)
                {
                    handle.MarkLost("its lease could not be renewed before it expired: " + ex.Message);
                    return;
                }
            }
        }
    }

    internal LeaseRecord Renewed(LeaseRecord record, string? operationId)
    {
        var now = time.GetUtcNow();
        return record with { OperationId = operationId ?? record.OperationId, Renewed = now, Expires = now.AddSeconds(options.Cluster.LeaseSeconds) };
    }

    internal void Track(LeaseRecord record) => _held[record.Token] = record;

    internal void Released(LeaseRecord record)
    {
        Log.LeaseReleased(logger, record.Repo, record.Holder);
        Seen(record.Repo, null, time.GetUtcNow());
    }

    internal void Lost(LeaseRecord record, string why) => Log.LeaseLost(logger, record.Repo, why);

    internal void Forget(LeaseRecord record) => _held.TryRemove(record.Token, out _);

    /// <summary>
    /// The lease of each repository as status shows it: one this agent holds, else the one last read from the repository
    /// (another agent's, or one left by an agent that died: past its expiry it will be taken over). Repositories without one
    /// are left out.
    /// </summary>
    public IReadOnlyList<ObservedLease> Current()
    {
        var now = time.GetUtcNow();
        var held = _held.Values.ToList();
        var leases = new List<ObservedLease>();
        lock (_gate)
        {
            for (var repo = 1; repo <= _seen.Length; repo++)
            {
                if (held.FirstOrDefault(r => r.Repo == repo) is { } mine)
                {
                    leases.Add(new ObservedLease(mine, true, now));
                }
                else if (_seen[repo - 1] is ({ } record, var readAt))
                {
                    leases.Add(new ObservedLease(record, false, readAt));
                }
            }
        }

        return leases;
    }

    /// <summary>
    /// Starts a read of every repository's lease object that has none under way (the status refresh loop calls it each
    /// interval, a status refresh too): another agent's lease then shows in this agent's status. A failed read keeps the
    /// last one; the repository's probe says why it fails.
    /// </summary>
    public void StartReading(CancellationToken stopping)
    {
        if (!options.Cluster.BackupLease)
        {
            return;
        }

        lock (_gate)
        {
            for (var index = 0; index < _reading.Length; index++)
            {
                if (_reading[index] is not { IsCompleted: false })
                {
                    var repo = index + 1;
                    _reading[index] = Task.Run(() => ReadLeaseAsync(repo, stopping), stopping);
                }
            }
        }
    }

    /// <summary>Reads every repository's lease now (each under the probe deadline), as <c>status --refresh</c> does.</summary>
    public async Task ReadAllAsync(CancellationToken cancellationToken)
    {
        StartReading(CancellationToken.None);
        Task[] reads;
        lock (_gate)
        {
            reads = _reading.OfType<Task>().ToArray();
        }

        await Task.WhenAll(reads).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task ReadLeaseAsync(int repo, CancellationToken stopping)
    {
        var settings = options.Repositories[repo - 1];
        var timeout = TimeSpan.FromSeconds(options.Status.ProbeTimeoutSeconds);
        var startedAt = time.GetUtcNow();
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            deadline.CancelAfter(timeout);
            using var store = RepositoryKind.Of(settings).OpenLeaseObject(settings, RepositoryKind.KeyOf(repo - 1), ObjectName(options.Stanza), timeout);
            var current = await store.ReadAsync(deadline.Token).ConfigureAwait(false);
            Seen(repo, current is null ? null : Deserialize(current.Content), startedAt);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stopping.IsCancellationRequested)
        {
            // Unreachable or unreadable: the last reading stands, and the repository's probe reports the failure.
        }
    }

    /// <summary>Keeps what the repository held at <paramref name="at"/>, unless something newer is known (a read that
    /// started before this agent released its lease must not bring it back).</summary>
    private void Seen(int repo, LeaseRecord? record, DateTimeOffset at)
    {
        lock (_gate)
        {
            if (_seen[repo - 1] is not { ReadAt: var known } || known <= at)
            {
                _seen[repo - 1] = (record, at);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.BackupLeaseAcquired, EventName = nameof(LogEvents.BackupLeaseAcquired), Level = LogLevel.Information,
            Message = "Backup lease on repo{Repo} taken by {Holder} until {Expires:u} (renewed while the backup runs)")]
        public static partial void LeaseAcquired(ILogger logger, int repo, string holder, DateTimeOffset expires);

        [LoggerMessage(EventId = LogEvents.BackupLeaseTakenOver, EventName = nameof(LogEvents.BackupLeaseTakenOver), Level = LogLevel.Warning,
            Message = "Backup lease on repo{Repo} taken over from {Previous}, whose lease expired unrenewed at {Expired:u} (that agent died or lost the repository)")]
        public static partial void LeaseTakenOver(ILogger logger, int repo, string previous, DateTimeOffset expired);

        [LoggerMessage(EventId = LogEvents.BackupLeaseReleased, EventName = nameof(LogEvents.BackupLeaseReleased), Level = LogLevel.Information,
            Message = "Backup lease on repo{Repo} released by {Holder}")]
        public static partial void LeaseReleased(ILogger logger, int repo, string holder);

        [LoggerMessage(EventId = LogEvents.BackupLeaseRenewFailed, EventName = nameof(LogEvents.BackupLeaseRenewFailed), Level = LogLevel.Warning,
            Message = "Could not renew the backup lease on repo{Repo}: {Error}; retrying until it would expire")]
        public static partial void LeaseRenewFailed(ILogger logger, int repo, string error);

        [LoggerMessage(EventId = LogEvents.BackupLeaseLost, EventName = nameof(LogEvents.BackupLeaseLost), Level = LogLevel.Error,
            Message = "Lost the backup lease on repo{Repo}: {Why}; stopping the backup so that two agents never write the repository at once")]
        public static partial void LeaseLost(ILogger logger, int repo, string why);
    }
}

/// <summary>A held lease: renewed in the background until disposed, then deleted (only if still ours).</summary>
public sealed class LeaseHandle : IAsyncDisposable
{
    public static readonly LeaseHandle None = new(null, null, null, null);

    private readonly BackupLease? _owner;
    private readonly ILeaseObject? _store;
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _lost = new();
    private readonly SemaphoreSlim _gate = new(1, 1);
    private string? _version;
    private Task _renewing = Task.CompletedTask;
    private string? _operationId;
    private int _disposed;

    internal LeaseHandle(BackupLease? owner, ILeaseObject? store, LeaseRecord? record, string? version)
    {
        _owner = owner;
        _store = store;
        Record = record!;
        _version = version;
        if (owner is not null)
        {
            _renewing = owner.RenewLoopAsync(this, _stop.Token);
        }
    }

    internal LeaseRecord Record { get; private set; }

    /// <summary>Fires when another agent holds the repository now: the backup must stop.</summary>
    public CancellationToken Lost => _lost.Token;

    /// <summary>Why the lease was lost; null while it is held.</summary>
    public string? LostReason { get; private set; }

    /// <summary>Names the operation in the lease (the operation exists only after the lease is taken), and renews it.</summary>
    public async Task AttachAsync(string operationId, CancellationToken cancellationToken)
    {
        _operationId = operationId;
        if (_owner is not null)
        {
            await RenewAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Writes a later expiry if the lease is still ours; false (and Lost fired) when it is not.</summary>
    internal async Task<bool> RenewAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (LostReason is not null)
            {
                return false;
            }

            var current = await _store!.ReadAsync(cancellationToken).ConfigureAwait(false);
            var holder = current is null ? null : BackupLease.Deserialize(current.Content);
            if (current is null || holder?.Token != Record.Token)
            {
                MarkLost(holder is null ? "the lease object was removed" : "another agent holds it now: " + holder.Describe());
                return false;
            }

            var renewed = _owner!.Renewed(Record, _operationId);
            if (!await _store.TryReplaceAsync(BackupLease.Serialize(renewed), current.Version, cancellationToken).ConfigureAwait(false))
            {
                MarkLost("it changed while being renewed");
                return false;
            }

            Record = renewed;
            _owner.Track(renewed);
            _version = (await _store.ReadAsync(cancellationToken).ConfigureAwait(false))?.Version ?? _version;
            return true;
        }
        finally
        {
            _gate.Release();
        }
    }

    internal void MarkLost(string why)
    {
        LostReason ??= why;
        _owner?.Lost(Record, why);
        _lost.Cancel();
    }

    public async ValueTask DisposeAsync()
    {
        if (_owner is null || Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _renewing.ConfigureAwait(false);
        try
        {
            if (LostReason is null && _version is not null)
            {
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                await _store!.DeleteAsync(_version, deadline.Token).ConfigureAwait(false);
                _owner.Released(Record);
            }
        }
        catch (Exception)
        {
            // Unreachable storage: the lease expires by itself.
        }
        finally
        {
            _owner.Forget(Record);
            _store!.Dispose();
            _stop.Dispose();
            _lost.Dispose();
        }
    }
}
