namespace Backrest.Agent.Core.Repositories;

/// <summary>Why a repository could not be reached, in classes an operator acts on differently.</summary>
public enum ProbeErrorClass
{
    /// <summary>The host name does not resolve.</summary>
    Dns,

    /// <summary>Nothing answers on the host and port (refused, unreachable, reset).</summary>
    Connect,

    /// <summary>The TLS handshake failed (untrusted or mismatched certificate).</summary>
    Tls,

    /// <summary>The credentials were refused (wrong key, bad signature, expired token).</summary>
    Auth,

    /// <summary>The bucket, container or directory does not exist.</summary>
    NotFound,

    /// <summary>The credentials are valid but may not list or write there.</summary>
    Permission,

    /// <summary>No answer within the probe's timeout.</summary>
    Timeout,

    /// <summary>Anything else: the message says what.</summary>
    Other,
}

/// <summary>One reachability probe of one repository.</summary>
public sealed record ProbeResult(
    bool Reachable,
    TimeSpan Latency,
    ProbeErrorClass? ErrorClass,
    string? Message,
    long? FreeBytes,
    DateTimeOffset CheckedAt)
{
    /// <summary>The class as status and metrics spell it: dns, connect, tls, auth, not-found, permission, timeout, other.</summary>
    public static string Name(ProbeErrorClass errorClass) => errorClass switch
    {
        ProbeErrorClass.NotFound => "not-found",
        _ => errorClass.ToString().ToLowerInvariant(),
    };
}
