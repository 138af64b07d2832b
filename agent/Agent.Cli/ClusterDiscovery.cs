using System.Net;
using System.Net.Sockets;

namespace Backrest.Agent.Cli;

/// <summary>
/// --cluster: a Kubernetes headless Service name answers with one A/AAAA record per ready pod, so resolving it lists
/// the agents of a cluster without the Kubernetes API (and without credentials for it).
/// </summary>
internal static class ClusterDiscovery
{
    public static async Task<IReadOnlyList<AgentAddress>> ResolveAsync(AgentAddress name, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        IPAddress[] addresses;
        try
        {
            addresses = await Dns.GetHostAddressesAsync(name.Host, deadline.Token);
        }
        catch (SocketException ex)
        {
            throw new CliException($"cluster {name}: '{name.Host}' does not resolve ({ex.SocketErrorCode}: {ex.Message}); " +
                "give the headless Service's name (e.g. pg-agents.namespace.svc) or list the agents with --agent.");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException($"cluster {name}: resolving '{name.Host}' took longer than --timeout {timeout.TotalSeconds:0} s.");
        }

        if (addresses.Length == 0)
        {
            throw new CliException($"cluster {name}: '{name.Host}' has no A or AAAA record (no ready pod behind the Service?).");
        }

        // One row per pod, in a stable order so that two runs compare line by line.
        var serverName = IPAddress.TryParse(name.Host, out _) ? null : name.Host;
        return [.. addresses
            .Select(a => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a)
            .Distinct()
            .OrderBy(a => a.AddressFamily)
            .ThenBy(a => a.GetAddressBytes(), ByteOrder.Instance)
            .Select(a => new AgentAddress(a.ToString(), name.Port) { ServerName = serverName })];
    }

    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => ((ReadOnlySpan<byte>)x).SequenceCompareTo(y);
    }
}
