using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Backrest.Agent.IntegrationTests.Harness;

/// <summary>Free TCP ports on 127.0.0.1, never the same one twice in this test run.</summary>
public static class FreePort
{
    private static readonly ConcurrentDictionary<int, byte> HandedOut = new();

    public static int Next()
    {
        while (true)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            if (HandedOut.TryAdd(port, 0))
            {
                return port;
            }
        }
    }
}
