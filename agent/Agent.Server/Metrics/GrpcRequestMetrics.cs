using System.Diagnostics;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.AspNetCore.Http.Features;
using Prometheus;

namespace Backrest.Agent.Server.Metrics;

/// <summary>
/// gRPC calls on every listener (control port and WAL socket) by method and status code, with go-grpc-prometheus's names
/// so existing dashboards apply. A middleware rather than an interceptor: it also sees calls refused before a service
/// runs (access control, malformed bodies). Method labels come from the endpoint, never from the request path, so an
/// unknown path is one "unknown" series.
/// </summary>
internal sealed class GrpcRequestMetrics
{
    private readonly Counter _handled;
    private readonly Histogram _duration;

    public GrpcRequestMetrics(AgentMetrics metrics)
    {
        var factory = Prometheus.Metrics.WithCustomRegistry(metrics.Registry);
        _handled = factory.CreateCounter("grpc_server_handled_total", "gRPC calls completed, by method and status code.",
            ["grpc_type", "grpc_service", "grpc_method", "grpc_code"]);
        _duration = factory.CreateHistogram("grpc_server_handling_seconds", "How long gRPC calls took, by method (streams: until they end).",
            new HistogramConfiguration
            {
                LabelNames = ["grpc_type", "grpc_service", "grpc_method"],
                Buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600],
            });
    }

    public async Task ObserveAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) != true)
        {
            await next(context);
            return;
        }

        var started = Stopwatch.GetTimestamp();
        try
        {
            await next(context);
        }
        finally
        {
            var method = context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method;
            var type = method is null ? "unknown" : TypeName(method.Type);
            var service = method?.ServiceName ?? "unknown";
            var name = method?.Name ?? "unknown";
            _handled.WithLabels(type, service, name, StatusOf(context)).Inc();
            _duration.WithLabels(type, service, name).Observe(Stopwatch.GetElapsedTime(started).TotalSeconds);
        }
    }

    /// <summary>grpc-status is a trailer, or a header in a trailers-only reply (a call refused before its body).</summary>
    private static string StatusOf(HttpContext context)
    {
        var value = context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers["grpc-status"] is { Count: > 0 } trailer
            ? trailer.ToString()
            : context.Response.Headers["grpc-status"].ToString();
        return int.TryParse(value, out var code) && Enum.IsDefined((StatusCode)code) ? ((StatusCode)code).ToString() : "Unknown";
    }

    private static string TypeName(MethodType type) => type switch
    {
        MethodType.Unary => "unary",
        MethodType.ServerStreaming => "server_stream",
        MethodType.ClientStreaming => "client_stream",
        _ => "bidi_stream",
    };
}
