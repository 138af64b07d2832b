namespace Backrest.Agent.Core.Configuration;

/// <summary>
/// TLS on the control port (and optionally the metrics port). Files come from a mounted Kubernetes Secret or
/// cert-manager and are re-read when they change, for new connections, without a restart.
/// </summary>
public sealed class TlsOptions
{
    /// <summary>PEM server certificate (chain). With <see cref="KeyFile"/>, the control port speaks TLS only.</summary>
    public string? CertificateFile { get; set; }

    public string? KeyFile { get; set; }

    /// <summary>PEM CA bundle: when set, every client must present a certificate signed by it (mutual TLS).</summary>
    public string? ClientCaFile { get; set; }

    /// <summary>
    /// Cleartext on a non-loopback address must be asked for explicitly (local development, the demo). On 127.0.0.1 or
    /// ::1 nothing off the host can connect, so cleartext needs no flag there.
    /// </summary>
    public bool AllowPlaintext { get; set; }

    /// <summary>Serve /metrics and the HTTP health endpoints over TLS too, with the same certificate (no client certificate).</summary>
    public bool Metrics { get; set; }
}

/// <summary>Who may call what. With neither a token file nor a client CA, every caller that reaches the port is an operator.</summary>
public sealed class AuthOptions
{
    /// <summary>
    /// Bearer tokens, one per line: <c>ROLE NAME TOKEN</c> (ROLE viewer or operator; '#' starts a comment). Re-read when
    /// the file changes. Callers send <c>authorization: Bearer TOKEN</c>.
    /// </summary>
    public string? TokensFile { get; set; }

    /// <summary>Client-certificate identities (subject common name) and their role, e.g. Agent:Auth:CertificateRoles:backrestctl=operator.</summary>
    public Dictionary<string, string> CertificateRoles { get; set; } = new(StringComparer.Ordinal);
}
