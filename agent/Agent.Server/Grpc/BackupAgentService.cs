using Backrest.Agent.Core;
using Backrest.Agent.Core.Backups;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.Restore;
using Backrest.Agent.Core.Retention;
using Backrest.Agent.Core.Schedules;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.Server.Grpc;

/// <summary>A thin adapter: map the request, call Core, map the reply. State lives in Core singletons.</summary>
internal sealed class BackupAgentService(
    StatusService status,
    StanzaService stanza,
    BackupService backups,
    RestoreService restores,
    OperationRegistry operations,
    BackupScheduler scheduler,
    RetentionService retention,
    Core.Verify.VerifyService verify,
    Core.Drills.DrillService drills,
    Core.Postgres.PostgresReadingCache postgres,
    Core.Configuration.AgentOptions options,
    TimeProvider time) : BackupAgent.BackupAgentBase
{
    private static readonly string AgentVersion =
        typeof(BackupAgentService).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    public override async Task<V1.AgentStatus> GetStatus(GetStatusRequest request, ServerCallContext context)
    {
        var reply = ProtoMapper.ToProto(await status.GetAsync(request.Refresh, context.CancellationToken), AgentVersion);
        var security = context.GetHttpContext().RequestServices;
        reply.TransportSecurity = security.GetRequiredService<Security.TlsFiles>().Mode;
        reply.Authorization = security.GetRequiredService<Security.AccessPolicy>().Mode;
        return reply;
    }

    public override async Task<CreateStanzaReply> CreateStanza(CreateStanzaRequest request, ServerCallContext context) =>
        new() { Message = await stanza.CreateAsync(context.CancellationToken) };

    public override async Task<CheckReply> Check(CheckRequest request, ServerCallContext context)
    {
        var checks = await stanza.CheckAsync(context.CancellationToken);
        var reply = new CheckReply { Ok = checks.All(c => c.Ok) };
        reply.Repositories.AddRange(checks.Select(c => new V1.RepositoryCheck { Repo = c.Repo, Ok = c.Ok, Message = c.Message }));
        return reply;
    }

    public override async Task<Operation> StartBackup(StartBackupRequest request, ServerCallContext context) =>
        ProtoMapper.ToProto(await backups.StartAsync(request.Type, request.Repo, context.CancellationToken, request.Queue));

    public override async Task<Operation> StartRestore(StartRestoreRequest request, ServerCallContext context) =>
        ProtoMapper.ToProto(await restores.StartAsync(ProtoMapper.FromProto(request), context.CancellationToken));

    public override Task<Operation> GetOperation(GetOperationRequest request, ServerCallContext context) =>
        Task.FromResult(ProtoMapper.ToProto(operations.Get(RequireId(request.Id))));

    public override async Task WatchOperation(WatchOperationRequest request, IServerStreamWriter<Operation> responseStream, ServerCallContext context)
    {
        await foreach (var snapshot in operations.WatchAsync(RequireId(request.Id), context.CancellationToken))
        {
            await responseStream.WriteAsync(ProtoMapper.ToProto(snapshot), context.CancellationToken);
        }
    }

    public override async Task<ListBackupsReply> ListBackups(ListBackupsRequest request, ServerCallContext context)
    {
        var list = await backups.ListAsync(request.Repo, context.CancellationToken);
        var reply = new ListBackupsReply { InfoTime = ProtoMapper.ToTimestamp(list.ReadAt) };
        if (list.ReadAt is { } readAt)
        {
            reply.InfoAgeSeconds = (time.GetUtcNow() - readAt).TotalSeconds;
        }

        reply.Backups.AddRange(list.Value.Select(ProtoMapper.ToProto));
        return reply;
    }

    public override async Task<GetRecoveryWindowReply> GetRecoveryWindow(GetRecoveryWindowRequest request, ServerCallContext context)
    {
        var windows = await restores.GetWindowsAsync(request.Repo, context.CancellationToken);
        var reply = new GetRecoveryWindowReply { InfoTime = ProtoMapper.ToTimestamp(windows.ReadAt) };
        if (windows.ReadAt is { } readAt)
        {
            reply.InfoAgeSeconds = (time.GetUtcNow() - readAt).TotalSeconds;
        }

        reply.Windows.AddRange(windows.Value.Select(ProtoMapper.ToProto));
        return reply;
    }

    public override Task<Operation> CancelOperation(CancelOperationRequest request, ServerCallContext context) =>
        Task.FromResult(ProtoMapper.ToProto(operations.Cancel(RequireId(request.Id))));

    public override Task<ListOperationsReply> ListOperations(ListOperationsRequest request, ServerCallContext context)
    {
        if (request.Limit is < 0 or > OperationHistory.DefaultCapacity)
        {
            throw AgentException.InvalidArgument($"limit {request.Limit} is not valid: 1 to {OperationHistory.DefaultCapacity}, or 0 for 50.");
        }

        var reply = new ListOperationsReply();
        reply.Operations.AddRange(operations.List(request.Limit == 0 ? 50 : request.Limit).Select(ProtoMapper.ToProto));
        return Task.FromResult(reply);
    }

    public override Task<ListSchedulesReply> ListSchedules(ListSchedulesRequest request, ServerCallContext context)
    {
        var reply = new ListSchedulesReply();
        reply.Schedules.AddRange(scheduler.List().Select(ProtoMapper.ToProto));
        return Task.FromResult(reply);
    }

    public override async Task<ExpireReply> Expire(ExpireRequest request, ServerCallContext context)
    {
        var outcome = await retention.ExpireAsync(request.Repo, request.DryRun, context.CancellationToken);
        var reply = new ExpireReply { DryRun = outcome.DryRun };
        reply.Backups.AddRange(outcome.Backups.Select(b => new ExpiredBackupSet { Repo = b.Repo, Labels = { b.Labels } }));
        reply.Archive.AddRange(outcome.Archive.Select(a => new ExpiredArchiveRange { Repo = a.Repo, ArchiveId = a.ArchiveId, Start = a.Start, Stop = a.Stop }));
        return reply;
    }

    public override async Task<DeleteBackupReply> DeleteBackup(DeleteBackupRequest request, ServerCallContext context)
    {
        var outcome = await retention.DeleteAsync(request.Label, request.Repo, request.Force, request.DryRun, context.CancellationToken);
        return new DeleteBackupReply
        {
            DryRun = outcome.DryRun,
            Repo = outcome.Repo,
            Label = outcome.Label,
            Removed = { outcome.Removed },
            OldestRemaining = outcome.OldestRemaining is null ? null : ProtoMapper.ToProto(outcome.OldestRemaining),
        };
    }

    public override async Task<GetRoleReply> GetRole(GetRoleRequest request, ServerCallContext context)
    {
        var reading = await postgres.GetAsync(context.CancellationToken);
        var role = reading.Role;
        var reply = new GetRoleReply
        {
            PostgresUp = role.Up,
            Role = !role.Up ? "" : role.InRecovery ? "standby" : "primary",
            Timeline = role.Timeline,
            Lsn = role.Lsn ?? "",
            ReceiveLsn = role.ReceiveLsn ?? "",
            Error = role.Error ?? "",
            Stanza = options.Stanza,
            Member = options.Cluster.ResolveMember(),
            BackupFrom = options.Cluster.BackupFrom,
            ReadAgeSeconds = Math.Max(0, (time.GetUtcNow() - reading.ReadAt).TotalSeconds),
        };
        if (role.ReplayLagSeconds is { } lag)
        {
            reply.ReplayLagSeconds = Math.Max(0, lag);
        }

        return reply;
    }

    public override Task<Operation> Verify(VerifyRequest request, ServerCallContext context) =>
        Task.FromResult(ProtoMapper.ToProto(verify.Start(request.Repo, request.Queue)));

    public override async Task<Operation> Drill(DrillRequest request, ServerCallContext context) =>
        ProtoMapper.ToProto(await drills.StartAsync(request.Repo, context.CancellationToken, request.Queue));

    private static string RequireId(string id) =>
        string.IsNullOrWhiteSpace(id) ? throw AgentException.InvalidArgument("Operation id is required.") : id;
}
