using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Backrest.Agent.Core.Repositories;

/// <summary>
/// The HTTP handler every SDK probe uses: pgBackRest's TLS settings applied the same way (VerifyTls=false accepts any
/// certificate; a CA file adds the authorities that may sign the server's certificate), and a connect timeout.
/// </summary>
public static class TlsTrust
{
    public static SocketsHttpHandler CreateHandler(bool verifyTls, string? caFile, TimeSpan connectTimeout)
    {
        var handler = new SocketsHttpHandler { ConnectTimeout = connectTimeout, PooledConnectionLifetime = TimeSpan.FromMinutes(1) };
        if (!verifyTls)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        }
        else if (caFile is not null)
        {
            var authorities = new X509Certificate2Collection();
            authorities.ImportFromPemFile(caFile);
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                Validate(authorities, certificate, errors);
        }

        return handler;
    }

    /// <summary>The system's verdict, or a chain built on the CA file's authorities; the name must match either way.</summary>
    internal static bool Validate(X509Certificate2Collection authorities, X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch) || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        using var server = new X509Certificate2(certificate);
        return chain.Build(server);
    }
}
