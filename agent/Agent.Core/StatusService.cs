using Backrest.Agent.Core.Archive;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Postgres;

namespace Backrest.Agent.Core;

public sealed record AgentStatus(
    string Stanza,
    string DataDirectory,
    PostgresState Postgres,
    StanzaInfo? Info,
    string? InfoError,
    AgentRuntime Runtime,
    OperationSnapshot? Running,
    ArchiveStats Archive,
    ReadyBacklog Ready,
    ArchiverStats? Archiver)
{
    /// <summary>Each repository's retention as configured; an unconfigured one is also a start-up warning.</summary>
    public IReadOnlyList<Retention.RetentionPolicy> Retention { get; init; } = [];
}

/// <summary>One read of everything an operator asks first: is PostgreSQL up, is the stanza healthy, is WAL flowing.</summary>
public sealed class StatusService(
    AgentOptions options,
    AgentRuntime runtime,
    PostgresClient postgres,
    PgBackRestClient pgBackRest,
    OperationRegistry operations,
    ArchiveService archive,
    TimeProvider time)
{
    private static readonly TimeSpan InfoTimeout = TimeSpan.FromSeconds(15);

    public async Task<AgentStatus> GetAsync(CancellationToken cancellationToken)
    {
        var stateTask = postgres.GetStateAsync(cancellationToken);
        var archiverTask = postgres.GetArchiverStatsAsync(cancellationToken);
        StanzaInfo? info = null;
        string? infoError = null;
        // A dead remote repository makes info retry for minutes; status must answer anyway.
        using var infoTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        infoTimeout.CancelAfter(InfoTimeout);
        try
        {
            info = await pgBackRest.InfoAsync(infoTimeout.Token).ConfigureAwait(false);
        }
        catch (AgentException ex)
        {
            infoError = ex.Message;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            infoError = $"pgbackrest info did not answer within {InfoTimeout.TotalSeconds:0} s: a repository is probably unreachable.";
        }

        return new AgentStatus(
            options.Stanza,
            options.Postgres.DataDirectory,
            await stateTask.ConfigureAwait(false),
            info,
            infoError,
            runtime,
            operations.Running,
            archive.GetStats(),
            ReadyBacklog.Read(options.Postgres.DataDirectory, time.GetUtcNow()),
            await archiverTask.ConfigureAwait(false))
        {
            Retention = Retention.RetentionPolicy.All(options),
        };
    }
}
