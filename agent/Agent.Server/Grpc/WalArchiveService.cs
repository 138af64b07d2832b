using Backrest.Agent.Core;
using Backrest.Agent.Core.Archive;
using Backrest.Agent.Server.Metrics;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.Server.Grpc;

/// <summary>
/// archive_command / restore_command, served on the Unix socket only: the socket's file permissions are
/// what authorises PostgreSQL, so the TCP endpoint must not offer it.
/// </summary>
internal sealed class WalArchiveService(ArchiveService archive, AgentMetrics metrics, TimeProvider time) : WalArchive.WalArchiveBase
{
    public override async Task<PushWalReply> PushWal(PushWalRequest request, ServerCallContext context)
    {
        RequireUnixSocket(context);
        var started = time.GetTimestamp();
        var succeeded = false;
        try
        {
            var reply = new PushWalReply();
            reply.Warnings.AddRange(await archive.PushAsync(request.Path, context.CancellationToken));
            succeeded = true;
            return reply;
        }
        finally
        {
            metrics.ObservePush(time.GetElapsedTime(started), succeeded);
        }
    }

    public override async Task<GetWalReply> GetWal(GetWalRequest request, ServerCallContext context)
    {
        RequireUnixSocket(context);
        return new GetWalReply { Found = await archive.GetAsync(request.Name, request.Destination, context.CancellationToken) };
    }

    private static void RequireUnixSocket(ServerCallContext context)
    {
        // A TCP connection has a local IP address; a Unix socket connection has none.
        if (context.GetHttpContext().Connection.LocalIpAddress is not null)
        {
            throw new AgentException(AgentErrorKind.PermissionDenied,
                "WalArchive is served on the agent's Unix socket only.", "Point the archive client at Agent:Listen:ArchiveSocket.");
        }
    }
}
