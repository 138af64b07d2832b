using System.Security.Cryptography.X509Certificates;
using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Server.Security;

/// <summary>The server certificate and the client CA, from PEM files that are re-read when they change (for new connections).</summary>
internal sealed class TlsFiles
{
    private readonly ReloadingFile<X509Certificate2>? server;
    private readonly ReloadingFile<X509Certificate2Collection>? clientCa;

    public TlsFiles(AgentOptions options, TimeProvider time)
    {
        var tls = options.Tls;
        if (tls.CertificateFile is { } cert && tls.KeyFile is { } key)
        {
            server = new ReloadingFile<X509Certificate2>([cert, key], p => X509Certificate2.CreateFromPemFile(p[0], p[1]), time);
        }

        if (tls.ClientCaFile is { } ca)
        {
            clientCa = new ReloadingFile<X509Certificate2Collection>([ca], p =>
            {
                var bundle = new X509Certificate2Collection();
                bundle.ImportFromPemFile(p[0]);
                return bundle.Count > 0 ? bundle : throw new InvalidDataException($"{p[0]} holds no certificate.");
            }, time);
        }
    }

    public bool Enabled => server is not null;

    public bool ClientCertificatesRequired => clientCa is not null;

    /// <summary>"plaintext", "tls" or "mtls": shown in status.</summary>
    public string Mode => server is null ? "plaintext" : clientCa is null ? "tls" : "mtls";

    public X509Certificate2 ServerCertificate => server?.Value ?? throw new InvalidOperationException("TLS is not configured.");

    /// <summary>Loads every file once at start-up, so a bad path or PEM is a configuration error, not a failed handshake later.</summary>
    public IReadOnlyList<string> CheckLoadable()
    {
        var errors = new List<string>();
        Try(() => _ = server?.Value, "Agent:Tls:CertificateFile/KeyFile");
        Try(() => _ = clientCa?.Value, "Agent:Tls:ClientCaFile");
        return errors;

        void Try(Action load, string key)
        {
            try
            {
                load();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException
                                           or ArgumentException or InvalidDataException)
            {
                errors.Add($"{key}: cannot load ({ex.Message.TrimEnd('.')}); give PEM files the agent can read.");
            }
        }
    }

    /// <summary>A client certificate is trusted when it chains to the configured CA (and only to it).</summary>
    public bool IsTrustedClient(X509Certificate2 certificate)
    {
        if (clientCa is null)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(clientCa.Value);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.2")); // clientAuth
        return chain.Build(certificate);
    }
}
