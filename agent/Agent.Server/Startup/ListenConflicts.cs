using System.Net;
using System.Net.Sockets;
using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Server.Startup;

/// <summary>
/// Kestrel's "address already in use" turned into the setting to change: a port in use is a configuration error
/// (exit 2, one line naming the key), not a crash with a stack trace that restarts the container in a loop.
/// </summary>
internal static class ListenConflicts
{
    /// <summary>Tries each TCP port before the host starts, so that a conflict is one line on stderr rather than the
    /// host's error log with a stack trace. Kestrel's own failure (a port taken in between) is still caught by
    /// <see cref="Describe"/>.</summary>
    public static string? FindInUse(AgentOptions options)
    {
        var listen = options.Listen;
        foreach (var (key, port) in new[] { ("Agent:Listen:Port", listen.Port), ("Agent:Listen:MetricsPort", listen.MetricsPort) })
        {
            try
            {
                using var probe = new Socket(AddressFamily.InterNetworkV6 == IPAddress.Parse(listen.Address).AddressFamily
                    ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                probe.Bind(new IPEndPoint(IPAddress.Parse(listen.Address), port));
                probe.Listen();
            }
            catch (SocketException ex)
            {
                return Message(key, port.ToString(), ex.Message);
            }
        }

        return null;
    }

    public static string? Describe(Exception exception, AgentOptions options)
    {
        var bind = Flatten(exception).FirstOrDefault(e => e is IOException && e.Message.Contains("Failed to bind", StringComparison.Ordinal));
        if (bind is null)
        {
            return null;
        }

        var listen = options.Listen;
        var message = bind.Message;
        var key = message.Contains($":{listen.MetricsPort}", StringComparison.Ordinal) ? ("Agent:Listen:MetricsPort", listen.MetricsPort.ToString())
            : message.Contains($":{listen.Port}", StringComparison.Ordinal) ? ("Agent:Listen:Port", listen.Port.ToString())
            : message.Contains(listen.ArchiveSocket, StringComparison.Ordinal) ? ("Agent:Listen:ArchiveSocket", listen.ArchiveSocket)
            : ("Agent:Listen", $"{listen.Address}");
        return Message(key.Item1, key.Item2, Reason(bind));
    }

    private static string Message(string key, string value, string reason) =>
        $"{key}: cannot listen on {value} ({reason.TrimEnd('.')}). Stop whatever holds it (`ss -ltnp`) or choose another value for {key}.";

    private static string Reason(Exception bind) =>
        bind.InnerException?.Message is { Length: > 0 } inner ? inner.TrimEnd('.') : bind.Message.TrimEnd('.');

    private static IEnumerable<Exception> Flatten(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions.SelectMany(Flatten))
                {
                    yield return inner;
                }
            }

            yield return e;
        }
    }
}
