using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Google.Rpc;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.Cli;

/// <summary>A call to one agent failed; the message names the agent and says what to do when it helps.</summary>
internal sealed class AgentCallException(AgentAddress agent, RpcException rpc, TimeSpan timeout)
    : CliException(Describe(agent, rpc, timeout))
{
    public AgentAddress Agent { get; } = agent;

    public RpcException Rpc { get; } = rpc;

    public Grpc.Core.StatusCode StatusCode => Rpc.StatusCode;

    internal static string Describe(AgentAddress agent, RpcException rpc, TimeSpan timeout)
    {
        if (IsUnreachable(rpc, out var reason) && reason.StartsWith("TLS:", StringComparison.Ordinal))
        {
            return $"{agent}: the TLS handshake failed ({reason[4..].Trim()}). Pass the CA that signed the agent's certificate"
                + " with --tls-ca, and --cert/--key when the agent requires client certificates.";
        }

        if (IsUnreachable(rpc, out reason))
        {
            return $"{agent}: cannot reach the agent ({reason}). Check that the agent is running and listening on {agent}"
                + $" (set the address with --agent or ${GlobalOptions.AgentEnvironmentVariable}), and that TLS matches: an agent"
                + " with Agent:Tls set needs --tls or --tls-ca.";
        }

        var message = new StringBuilder($"{agent}: {StatusCodeNames.Name(rpc.StatusCode)}");
        if (rpc.Status.Detail.Length > 0)
        {
            message.Append(": ").Append(ForPeople.Text(rpc.Status.Detail));
        }

        if (rpc.StatusCode == Grpc.Core.StatusCode.DeadlineExceeded)
        {
            message.Append(string.Create(
                CultureInfo.InvariantCulture,
                $" (no reply within {timeout.TotalSeconds:0} s; --timeout sets a longer deadline)"));
        }

        // Grpc.Net.Client's wording when the answer is not gRPC at all (a web server, a proxy, another service).
        if (rpc.Status.Detail.StartsWith("Bad gRPC response", StringComparison.Ordinal))
        {
            message.Append($" (is {agent} a backrest agent's gRPC port?)");
        }

        // The agent puts field violations in google.rpc.BadRequest (grpc-status-details-bin) for InvalidArgument.
        if (rpc.GetRpcStatus()?.GetDetail<BadRequest>() is { } badRequest)
        {
            foreach (var violation in badRequest.FieldViolations)
            {
                message.Append($"{Environment.NewLine}  {violation.Field}: {violation.Description}");
            }
        }

        return message.ToString();
    }

    /// <summary>
    /// Grpc.Net.Client reports a refused or failed connection as Unavailable with the transport exception attached;
    /// an Unavailable status sent by the agent itself has none.
    /// </summary>
    private static bool IsUnreachable(RpcException rpc, out string reason)
    {
        reason = "";
        if (rpc.StatusCode != Grpc.Core.StatusCode.Unavailable && rpc.StatusCode != Grpc.Core.StatusCode.Internal)
        {
            return false;
        }

        var transport = false;
        for (var exception = rpc.Status.DebugException; exception is not null; exception = exception.InnerException)
        {
            if (exception is System.Security.Authentication.AuthenticationException)
            {
                return (reason = "TLS: " + exception.Message) is not null;
            }

            if (exception is HttpRequestException or SocketException or HttpProtocolException or TimeoutException or IOException)
            {
                transport = true;
                reason = exception.Message;
            }
        }

        return transport;
    }
}
