namespace Backrest.Agent.Core.Postgres;

/// <summary>
/// GetRole and status answer from one shared read of PostgreSQL (<see cref="PostgresClient.ReadAsync"/>) no older than
/// <see cref="MaxAge"/>. A cluster view asks every agent for both at once, and dashboards poll: without sharing, each
/// call opened its own connection (a backend fork, authentication, catalog warm-up), which made a burst of calls queue
/// behind PostgreSQL's connection start-up. Callers that arrive while a read runs wait for that read; the replies say
/// how old the reading is.
/// </summary>
public sealed class PostgresReadingCache(PostgresClient postgres, TimeProvider time)
{
    /// <summary>Short enough that a role or LSN is never staler than a human can notice, long enough to merge a burst.</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private PostgresReading? _last;
    private Task<PostgresReading>? _reading;

    /// <summary>The last reading when it is at most <see cref="MaxAge"/> old, else a new one (shared with concurrent callers).</summary>
    public Task<PostgresReading> GetAsync(CancellationToken cancellationToken) => GetAsync(MaxAge, cancellationToken);

    /// <summary>
    /// The last reading when it is at most <paramref name="maxAge"/> old, else a new one, or the one under way. Zero: a read
    /// made for this call, or joined while it runs (the recovery window's end must follow the archiver at once).
    /// </summary>
    public Task<PostgresReading> GetAsync(TimeSpan maxAge, CancellationToken cancellationToken)
    {
        Task<PostgresReading> reading;
        lock (_gate)
        {
            if (_last is { } last && maxAge > TimeSpan.Zero && time.GetUtcNow() - last.ReadAt <= maxAge)
            {
                return Task.FromResult(last);
            }

            // Not bound to this caller's cancellation: the others wait on it too. The connection has its own deadlines.
            if (_reading is not { IsCompleted: false })
            {
                _reading = Task.Run(ReadAsync, CancellationToken.None);
            }

            reading = _reading;
        }

        return reading.WaitAsync(cancellationToken);
    }

    private async Task<PostgresReading> ReadAsync()
    {
        var reading = await postgres.ReadAsync(CancellationToken.None).ConfigureAwait(false);
        lock (_gate)
        {
            _last = reading;
        }

        return reading;
    }
}
