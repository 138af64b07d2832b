using Backrest.Agent.Core;
using Backrest.Agent.Core.Configuration;
using Grpc.Core;

namespace Backrest.Agent.Server.Security;

/// <summary>
/// Runs before gRPC (and so before request parsing): the WAL socket serves WalArchive only; on the control port a
/// caller is identified by bearer token or client certificate and must hold the method's role. Every call that
/// needs the operator role is logged once with the caller, the method and the outcome (an audit line, no secret).
/// </summary>
internal sealed partial class AccessControlMiddleware(RequestDelegate next, AccessPolicy policy, AgentOptions options,
    ILogger<AccessControlMiddleware> logger)
{
    private const string WalArchivePrefix = "/backrest.agent.v1.WalArchive/";
    private const string HealthPrefix = "/grpc.health.v1.Health/";
    private const string ControlPrefix = "/backrest.agent.v1.BackupAgent/";

    public async Task InvokeAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? "";
        if (context.Connection.LocalIpAddress is null)
        {
            // The Unix socket: PostgreSQL's archive client (its uid checked when it connected), nothing else.
            if (path.StartsWith(WalArchivePrefix, StringComparison.Ordinal) || path.StartsWith(HealthPrefix, StringComparison.Ordinal))
            {
                await next(context);
                return;
            }

            Refuse(context, StatusCode.PermissionDenied,
                $"The WAL socket serves WalArchive only; call the control API on port {options.Listen.Port}.");
            return;
        }

        // Metrics and HTTP health are read-only and on their own port; health over gRPC is for probes; WalArchive
        // refuses TCP itself.
        if (context.Connection.LocalPort == options.Listen.MetricsPort || !path.StartsWith(ControlPrefix, StringComparison.Ordinal))
        {
            await next(context);
            return;
        }

        var method = path[ControlPrefix.Length..];
        var required = AccessPolicy.Required(method);
        Caller caller;
        if (!policy.Enabled)
        {
            caller = new Caller("anonymous", Role.Operator);
        }
        else if (Identify(context) is not { } known)
        {
            Log.Refused(logger, "unauthenticated", method, "UNAUTHENTICATED");
            Refuse(context, StatusCode.Unauthenticated, context.Request.Headers.Authorization.Count > 0
                ? "The bearer token is not known to this agent: check backrestctl --token-file and the agent's Agent:Auth:TokensFile."
                : "This agent needs credentials: a bearer token (backrestctl --token-file) or a client certificate (--cert, --key).");
            return;
        }
        else if (known.Role is not { } role || role < required)
        {
            Log.Refused(logger, known.Identity, method, "PERMISSION_DENIED");
            Refuse(context, StatusCode.PermissionDenied, known.Role is null
                ? $"{known.Identity} has no role on this agent; give it one in Agent:Auth."
                : $"{known.Identity} is a viewer; {method} needs the operator role.");
            return;
        }
        else
        {
            caller = known;
        }

        await next(context);
        if (required == Role.Operator)
        {
            Log.Audit(logger, caller.Identity, method, Outcome(context));
        }
    }

    private Caller? Identify(HttpContext context)
    {
        var authorization = context.Request.Headers.Authorization.ToString();
        if (authorization.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            // A token that is sent decides, even beside a certificate: an unknown one is refused rather than ignored.
            return policy.FromToken(authorization["Bearer ".Length..].Trim());
        }

        // Kestrel already checked the certificate against Agent:Tls:ClientCaFile during the handshake.
        return context.Connection.ClientCertificate is { } certificate
            ? policy.FromCertificate(certificate.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.SimpleName, false))
            : null;
    }

    private static string Outcome(HttpContext context)
    {
        var status = context.Response.Headers["grpc-status"].ToString();
        if (status.Length == 0)
        {
            status = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseTrailersFeature>()?.Trailers["grpc-status"].ToString() ?? "";
        }

        return int.TryParse(status, out var code) ? Backrest.Agent.V1.StatusCodeNames.Name((StatusCode)code) : "UNKNOWN";
    }

    /// <summary>A trailers-only gRPC reply: the status in the response headers and no body.</summary>
    private static void Refuse(HttpContext context, StatusCode code, string message)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers["grpc-message"] = message; // ASCII, no '%': needs no percent-encoding
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.AuditCall, EventName = nameof(LogEvents.AuditCall), Level = LogLevel.Information,
            Message = "audit: {Caller} called {Method}: {Outcome}")]
        public static partial void Audit(ILogger logger, string caller, string method, string outcome);

        [LoggerMessage(EventId = LogEvents.CallRefused, EventName = nameof(LogEvents.CallRefused), Level = LogLevel.Warning,
            Message = "audit: {Caller} refused for {Method}: {Outcome}")]
        public static partial void Refused(ILogger logger, string caller, string method, string outcome);
    }
}
