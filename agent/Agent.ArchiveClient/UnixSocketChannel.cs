using System.Net.Sockets;
using Grpc.Net.Client;

namespace Backrest.Agent.ArchiveClient;

/// <summary>A gRPC channel to the agent over its Unix domain socket.</summary>
internal static class UnixSocketChannel
{
    public static GrpcChannel Create(string socketPath, TimeSpan connectTimeout)
    {
        var endPoint = CreateEndPoint(socketPath);
        var handler = new SocketsHttpHandler
        {
            // SocketsHttpHandler bounds the ConnectCallback with this too: a wedged agent fails the call
            // in seconds instead of holding PostgreSQL's archiver until the call deadline.
            ConnectTimeout = connectTimeout,
            // PostgreSQL's environment may carry http_proxy; the socket is local, so never consult it
            // (that also saves reading the proxy variables at start-up).
            UseProxy = false,
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };

        // The host name is only the HTTP/2 :authority; the ConnectCallback decides where bytes go.
        return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
        });
    }

    private static UnixDomainSocketEndPoint CreateEndPoint(string socketPath)
    {
        try
        {
            return new UnixDomainSocketEndPoint(socketPath);
        }
        catch (ArgumentOutOfRangeException)
        {
            // The runtime's message spans two lines and repeats the path; PostgreSQL's log wants one line.
            throw new ArgumentException($"socket path '{socketPath}' is longer than a Unix socket address allows (108 bytes)");
        }
    }
}
