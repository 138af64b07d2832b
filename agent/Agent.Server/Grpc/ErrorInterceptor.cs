using System.Globalization;
using Backrest.Agent.Core;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Backrest.Agent.Server.Grpc;

/// <summary>
/// Maps the agent's typed errors to gRPC status codes, keeping the message and the hint (what to do next)
/// in the status detail and in trailers. Anything unexpected becomes INTERNAL with a pointer to the log.
/// </summary>
/// <remarks>
/// Messages may echo the caller's input, and the status travels in HTTP/2 headers: grpcio refuses metadata over 8 KiB
/// with RESOURCE_EXHAUSTED, hiding the real error. So the detail and each trailer are cut to
/// <see cref="MaxDetailLength"/> and <see cref="MaxTrailerLength"/> bytes as sent.
/// </remarks>
internal sealed partial class ErrorInterceptor(ILogger<ErrorInterceptor> logger) : Interceptor
{
    internal const int MaxDetailLength = 1024;

    internal const int MaxTrailerLength = 1024;

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Map(ex, context, request as Google.Protobuf.IMessage);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Map(ex, context, request as Google.Protobuf.IMessage);
        }
    }

    private RpcException Map(Exception exception, ServerCallContext context, Google.Protobuf.IMessage? request)
    {
        if (exception is OperationCanceledException && context.CancellationToken.IsCancellationRequested)
        {
            return new RpcException(new Status(StatusCode.Cancelled, "The call was cancelled by the client."));
        }

        if (exception is AgentException agent)
        {
            var trailers = new Metadata();
            if (agent.Hint is { } hint)
            {
                trailers.Add("hint", Shorten(AsciiOnly(UserInput.Sanitize(hint, request)), MaxTrailerLength));
            }

            if (agent.PgBackRestCode != 0)
            {
                trailers.Add("pgbackrest-code", agent.PgBackRestCode.ToString(CultureInfo.InvariantCulture));
            }

            var detail = agent.Hint is null ? agent.Message : $"{agent.Message} Hint: {agent.Hint}";
            return new RpcException(new Status(ToStatusCode(agent.Kind), Shorten(UserInput.Sanitize(detail, request), MaxDetailLength)), trailers);
        }

        // The exception's text stays in the log: it may hold paths, input or internals. The id ties the reply to it.
        var errorId = Guid.NewGuid().ToString("N")[..12];
        Log.UnhandledError(logger, context.Method, errorId, exception);
        return new RpcException(new Status(StatusCode.Internal,
            $"The agent hit an unexpected error (error id {errorId}); its log has the details under that id."));
    }

    internal static StatusCode ToStatusCode(AgentErrorKind kind) => kind switch
    {
        AgentErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        AgentErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        AgentErrorKind.NotFound => StatusCode.NotFound,
        AgentErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        AgentErrorKind.Aborted => StatusCode.Aborted,
        AgentErrorKind.Unavailable => StatusCode.Unavailable,
        AgentErrorKind.DeadlineExceeded => StatusCode.DeadlineExceeded,
        AgentErrorKind.PermissionDenied => StatusCode.PermissionDenied,
        AgentErrorKind.Cancelled => StatusCode.Cancelled,
        AgentErrorKind.Unimplemented => StatusCode.Unimplemented,
        AgentErrorKind.DataLoss => StatusCode.DataLoss,
        AgentErrorKind.Internal => StatusCode.Internal,
        _ => StatusCode.Unknown,
    };

    /// <summary>
    /// Cuts <paramref name="text"/> so that it takes at most about <paramref name="limit"/> bytes on the wire, marking what
    /// was left out. grpc-message is percent-encoded, so a character outside printable ASCII is counted as the nine
    /// bytes it can take (three UTF-8 bytes, each as %XX); plain ASCII counts one, so ASCII text keeps
    /// <paramref name="limit"/> characters.
    /// </summary>
    internal static string Shorten(string text, int limit)
    {
        var cost = 0;
        var kept = 0;
        while (kept < text.Length)
        {
            cost += text[kept] is >= ' ' and <= '~' and not '%' ? 1 : 9;
            if (cost > limit)
            {
                break;
            }

            kept++;
        }

        if (kept == text.Length)
        {
            return text;
        }

        if (kept > 0 && char.IsHighSurrogate(text[kept - 1]))
        {
            kept--; // half a pair would be invalid UTF-16
        }

        // ASCII dots, not an ellipsis: trailer values must be ASCII (Kestrel refuses other header values).
        return $"{text[..kept]}... ({text.Length - kept} more characters)";
    }

    private static string AsciiOnly(string text) => new(text.Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray());

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.UnhandledRpcError, EventName = nameof(LogEvents.UnhandledRpcError), Level = LogLevel.Error, Message = "Unexpected error {ErrorId} in {Method}")]
        public static partial void UnhandledError(ILogger logger, string method, string errorId, Exception exception);
    }
}
