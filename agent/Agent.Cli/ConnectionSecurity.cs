using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Backrest.Agent.Cli;

/// <summary>
/// How backrestctl proves itself and checks the agent: TLS (with the CA that signed the agent's certificate), a client
/// certificate for agents that require one, and a bearer token. Each has a flag and an environment variable.
/// </summary>
internal sealed record ConnectionSecurity(bool Tls, string? CaFile, string? CertificateFile, string? KeyFile, string? TokenFile)
{
    public static readonly ConnectionSecurity None = new(false, null, null, null, null);

    public bool UsesTls => Tls || CaFile is not null || CertificateFile is not null;

    /// <summary>Reads the files now, so that a wrong path is a usage error before any agent is called.</summary>
    public (SslClientAuthenticationOptions? Ssl, string? Token) Load()
    {
        string? token = null;
        if (TokenFile is not null)
        {
            token = Read(TokenFile, "--token-file", File.ReadAllText).Trim();
            if (token.Length == 0)
            {
                throw new CliException($"--token-file {TokenFile} is empty.", ExitCodes.Usage);
            }
        }

        if (!UsesTls)
        {
            return (null, token);
        }

        if ((CertificateFile is null) != (KeyFile is null))
        {
            throw new CliException("--cert and --key go together (the client certificate and its private key, PEM).", ExitCodes.Usage);
        }

        var ssl = new SslClientAuthenticationOptions();
        if (CertificateFile is not null)
        {
            var certificate = Read(CertificateFile, "--cert", path => X509Certificate2.CreateFromPemFile(path, KeyFile));
            ssl.ClientCertificates = [certificate];
        }

        if (CaFile is not null)
        {
            var authorities = Read(CaFile, "--tls-ca", path =>
            {
                var bundle = new X509Certificate2Collection();
                bundle.ImportFromPemFile(path);
                return bundle;
            });
            ssl.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                certificate is not null && (errors == SslPolicyErrors.None || TrustedBy(authorities, new X509Certificate2(certificate), errors));
        }

        return (ssl, token);
    }

    /// <summary>The agent's certificate chains to the given CA and names the host we asked for.</summary>
    private static bool TrustedBy(X509Certificate2Collection authorities, X509Certificate2 certificate, SslPolicyErrors errors)
    {
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    private static T Read<T>(string path, string option, Func<string, T> load)
    {
        try
        {
            return load(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new CliException($"{option} {path}: {ex.Message.TrimEnd('.')}.", ExitCodes.Usage);
        }
    }
}
