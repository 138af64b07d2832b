using Backrest.Agent.Core;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Backrest.Agent.Server.Grpc;

/// <summary>
/// Maps the agent's typed errors to gRPC status codes, keeping the message and the hint (what to do next)
/// in the status detail and in trailers. Anything unexpected becomes INTERNAL with a pointer to the log.
/// </summary>
internal sealed partial class ErrorInterceptor(ILogger<ErrorInterceptor> logger) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (Exception ex) when (ex is not RpcException)
        {
            throw Map(ex, context);
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
            throw Map(ex, context);
        }
    }

    private RpcException Map(Exception exception, ServerCallContext context)
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
                trailers.Add("hint", AsciiOnly(hint));
            }

            if (agent.PgBackRestCode != 0)
            {
                trailers.Add("pgbackrest-code", agent.PgBackRestCode.ToString());
            }

            var detail = agent.Hint is null ? agent.Message : $"{agent.Message} Hint: {agent.Hint}";
            return new RpcException(new Status(ToStatusCode(agent.Kind), detail), trailers);
        }

        Log.UnhandledError(logger, context.Method, exception);
        return new RpcException(new Status(StatusCode.Internal, "The agent hit an unexpected error; its log has the details."));
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

    private static string AsciiOnly(string text) => new(text.Select(c => c is >= ' ' and <= '~' ? c : '?').ToArray());

    private static partial class Log
    {
        [LoggerMessage(EventId = 500, EventName = "UnhandledRpcError", Level = LogLevel.Error, Message = "Unexpected error in {Method}")]
        public static partial void UnhandledError(ILogger logger, string method, Exception exception);
    }
}
