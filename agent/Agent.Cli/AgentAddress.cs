using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Backrest.Agent.Cli;

/// <summary>An agent's TCP endpoint as given on the command line: <c>host</c>, <c>host:port</c> or <c>[v6]:port</c>.</summary>
internal sealed record AgentAddress(string Host, int Port)
{
    /// <summary>
    /// The name a TLS certificate must carry when <see cref="Host"/> is an address found behind it (--cluster resolves
    /// a Service name to its pods' addresses; their certificates name the Service).
    /// </summary>
    public string? ServerName { get; init; }

    public const int DefaultPort = 7480;

    public static IEnumerable<string> SplitList(string value) =>
        value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public static bool TryParse(
        string text,
        [NotNullWhen(true)] out AgentAddress? address,
        [NotNullWhen(false)] out string? error)
    {
        address = null;
        text = text.Trim();
        if (text.Length == 0)
        {
            error = "empty agent address";
            return false;
        }

        if (text.Contains("://", StringComparison.Ordinal))
        {
            // The scheme is chosen by the client (cleartext until TLS support lands), not by the address.
            error = $"agent address '{text}': give host:port without a scheme";
            return false;
        }

        string host;
        string? portText = null;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']');
            if (close < 0 || (close + 1 < text.Length && text[close + 1] != ':'))
            {
                error = $"agent address '{text}': expected [IPv6]:port";
                return false;
            }

            host = text[1..close];
            portText = close + 1 < text.Length ? text[(close + 2)..] : null;
        }
        else if (text.Count(c => c == ':') == 1)
        {
            var colon = text.IndexOf(':');
            host = text[..colon];
            portText = text[(colon + 1)..];
        }
        else
        {
            // No colon, or a bare IPv6 address (several colons): the whole text is the host.
            host = text;
        }

        var port = DefaultPort;
        if (portText is not null
            && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            error = $"agent address '{text}': the port must be a number from 1 to 65535";
            return false;
        }

        if (Uri.CheckHostName(host) == UriHostNameType.Unknown)
        {
            error = $"agent address '{text}': '{host}' is not a host name or IP address";
            return false;
        }

        address = new AgentAddress(host, port);
        error = null;
        return true;
    }

    public Uri ToUri(string scheme) => new UriBuilder(scheme, Host, Port).Uri;

    public override string ToString() =>
        Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
