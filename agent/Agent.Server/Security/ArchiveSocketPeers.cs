using System.Net.Sockets;
using System.Runtime.InteropServices;
using Backrest.Agent.Core;
using Backrest.Agent.Core.Configuration;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Backrest.Agent.Server.Security;

/// <summary>
/// Who may connect to the WAL socket: the agent's own uid (PostgreSQL's in a pod where both run as postgres), root, and
/// Agent:Listen:ArchiveSocketUid. The peer's uid comes from the kernel (SO_PEERCRED) on each connection, so a file
/// mode widened by mistake does not open the socket to other users.
/// </summary>
internal sealed partial class ArchiveSocketPeers(AgentOptions options, ILogger<ArchiveSocketPeers> logger)
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    private readonly uint ownUid = GetEuid();

    public bool Allowed(uint uid) => uid == ownUid || uid == 0 || (options.Listen.ArchiveSocketUid is { } extra && uid == (uint)extra);

    /// <summary>The socket file: only its owner (the agent's user) may connect, unless another uid is allowed.</summary>
    public UnixFileMode SocketMode => options.Listen.ArchiveSocketUid is { } extra && (uint)extra != ownUid
        ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite
        : UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Kestrel connection middleware for the Unix socket listener.</summary>
    public Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async connection =>
    {
        var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
        if (socket is null || PeerUid(socket) is not { } uid || !Allowed(uid))
        {
            Log.PeerRefused(logger, socket is null ? -1 : (long?)PeerUid(socket) ?? -1);
            connection.Abort(new ConnectionAbortedException("WAL socket peer not allowed"));
            return;
        }

        await next(connection);
    };

    private static uint? PeerUid(Socket socket)
    {
        Span<byte> credentials = stackalloc byte[12]; // struct ucred { pid_t pid; uid_t uid; gid_t gid; }
        try
        {
            return socket.GetRawSocketOption(SolSocket, SoPeerCred, credentials) == 12
                ? MemoryMarshal.Read<uint>(credentials[4..])
                : null;
        }
        catch (SocketException)
        {
            return null;
        }
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.ArchiveSocketPeerRefused, EventName = nameof(LogEvents.ArchiveSocketPeerRefused), Level = LogLevel.Warning,
            Message = "WAL socket: refused a connection from uid {Uid} (allowed: the agent's own uid, root, Agent:Listen:ArchiveSocketUid)")]
        public static partial void PeerRefused(ILogger logger, long uid);
    }
}
