using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Amazon.Runtime;
using Azure;
using Google;

namespace Backrest.Agent.Core.Repositories;

/// <summary>Turns the SDKs' and the file system's exceptions into an error class and the provider's own message.</summary>
public static class ProbeErrors
{
    private const int MaxMessage = 400;

    // Provider error codes that mean "the credentials are fine but not allowed here".
    private static readonly string[] PermissionCodes =
        ["AccessDenied", "AuthorizationPermissionMismatch", "AuthorizationFailure", "AuthorizationResourceTypeMismatch", "AllAccessDisabled"];

    public static (ProbeErrorClass Class, string Message) Classify(Exception exception)
    {
        var chain = Chain(exception).ToList();
        foreach (var ex in chain)
        {
            switch (ex)
            {
                case AmazonServiceException { StatusCode: var status and not 0 } aws when (int)status >= 400:
                    return (FromHttp((int)status, aws.ErrorCode), Describe(aws, $"HTTP {(int)status} {aws.ErrorCode}"));
                case RequestFailedException { Status: >= 400 } azure:
                    return (FromHttp(azure.Status, azure.ErrorCode), Describe(azure, $"HTTP {azure.Status} {azure.ErrorCode}"));
                case GoogleApiException { HttpStatusCode: var status } google when (int)status >= 400:
                    return (FromHttp((int)status, google.Error?.Errors?.FirstOrDefault()?.Reason), Describe(google, $"HTTP {(int)status}"));
            }
        }

        foreach (var ex in chain)
        {
            var errorClass = ex switch
            {
                SocketException { SocketErrorCode: SocketError.HostNotFound or SocketError.TryAgain or SocketError.NoData } => ProbeErrorClass.Dns,
                SocketException { SocketErrorCode: SocketError.TimedOut } => ProbeErrorClass.Timeout,
                SocketException => ProbeErrorClass.Connect,
                HttpRequestException { HttpRequestError: HttpRequestError.NameResolutionError } => ProbeErrorClass.Dns,
                HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError } => ProbeErrorClass.Tls,
                AuthenticationException => ProbeErrorClass.Tls,
                HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } => ProbeErrorClass.Connect,
                TimeoutException => ProbeErrorClass.Timeout,
                UnauthorizedAccessException => ProbeErrorClass.Permission,
                DirectoryNotFoundException or FileNotFoundException => ProbeErrorClass.NotFound,
                _ => (ProbeErrorClass?)null,
            };
            if (errorClass is { } found)
            {
                // The outermost message names the operation; the matched one names the cause.
                return (found, Describe(exception, ex == exception ? null : ex.Message));
            }
        }

        return (ProbeErrorClass.Other, Describe(exception, null));
    }

    private static ProbeErrorClass FromHttp(int status, string? code) => status switch
    {
        401 => ProbeErrorClass.Auth,
        403 when code is not null && PermissionCodes.Contains(code, StringComparer.OrdinalIgnoreCase) => ProbeErrorClass.Permission,
        403 when code is "forbidden" => ProbeErrorClass.Permission,
        403 => ProbeErrorClass.Auth,
        404 => ProbeErrorClass.NotFound,
        408 or 504 => ProbeErrorClass.Timeout,
        _ => ProbeErrorClass.Other,
    };

    private static IEnumerable<Exception> Chain(Exception exception)
    {
        var queue = new Queue<Exception>([exception]);
        while (queue.TryDequeue(out var ex))
        {
            yield return ex;
            if (ex is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions)
                {
                    queue.Enqueue(inner);
                }
            }
            else if (ex.InnerException is { } inner)
            {
                queue.Enqueue(inner);
            }
        }
    }

    /// <summary>The provider's message, on one line and bounded (Azure's carries request ids and headers below it).</summary>
    private static string Describe(Exception exception, string? cause)
    {
        var first = exception.Message.Split('\n', 2)[0].Trim();
        var text = cause is null || first.Contains(cause, StringComparison.Ordinal) ? first : $"{first} ({cause.Split('\n', 2)[0].Trim()})";
        return text.Length <= MaxMessage ? text : text[..MaxMessage] + "...";
    }
}
