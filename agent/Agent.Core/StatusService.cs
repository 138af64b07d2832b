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
    ArchiverStats? Archiver);

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
    public async Task<AgentStatus> GetAsync(CancellationToken cancellationToken)
    {
        var stateTask = postgres.GetStateAsync(cancellationToken);
        var archiverTask = postgres.GetArchiverStatsAsync(cancellationToken);
        StanzaInfo? info = null;
        string? infoError = null;
        try
        {
            info = await pgBackRest.InfoAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (AgentException ex)
        {
            infoError = ex.Message;
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
            await archiverTask.ConfigureAwait(false));
    }
}
