using System.Net;
using System.Net.Http;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;

namespace Backrest.Agent.IntegrationTests.Harness;

/// <summary>A certificate authority made for one test, issuing server and client certificates as PEM files in a directory.</summary>
public sealed class TestAuthority
{
    private readonly RSA key;
    private readonly string directory;

    public TestAuthority(string directory, string name)
    {
        this.directory = directory;
        key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        Certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        CertificateFile = Write($"{name}-ca.pem", Certificate.ExportCertificatePem());
    }

    public X509Certificate2 Certificate { get; }

    public string CertificateFile { get; }

    /// <summary>A server certificate for 127.0.0.1 (DNS and IP names), as (certificate file, key file).</summary>
    public (string CertificateFile, string KeyFile) IssueServer(string name) => Issue(name, server: true).Item2;

    /// <summary>A client certificate with the given common name, loaded (for an HttpClient) and as files (for backrestctl).</summary>
    public (X509Certificate2 Certificate, (string CertificateFile, string KeyFile) Files) IssueClient(string commonName) => Issue(commonName, server: false);

    private (X509Certificate2, (string, string)) Issue(string name, bool server)
    {
        using var subjectKey = RSA.Create(2048);
        var request = new CertificateRequest($"CN={name}", subjectKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        if (server)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("127.0.0.1"); // pgBackRest 2.45-style clients match DNS names only
            names.AddDnsName("localhost");
            names.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, true, false));
        using var issued = request.Create(Certificate, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(12),
            RandomNumberGenerator.GetBytes(16));
        var withKey = issued.CopyWithPrivateKey(subjectKey);
        var files = (Write($"{name}.pem", issued.ExportCertificatePem()), Write($"{name}.key", subjectKey.ExportPkcs8PrivateKeyPem()));
        // Re-imported from PKCS#12: SslStream on Linux wants a certificate whose key it can hand to OpenSSL.
        return (X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null), files);
    }

    private string Write(string name, string pem)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, pem + "\n");
        // The agent runs as postgres and reads these; they are test material, not secrets.
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        return path;
    }
}

/// <summary>How a test client reaches an agent: TLS trusting one authority, a client certificate, a bearer token.</summary>
public sealed record ClientSecurity(X509Certificate2? TrustedAuthority = null, X509Certificate2? ClientCertificate = null, string? Token = null)
{
    public GrpcChannel CreateChannel(string address)
    {
        if (TrustedAuthority is null)
        {
            return GrpcChannel.ForAddress($"http://{address}");
        }

        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions
            {
                ClientCertificates = ClientCertificate is null ? null : [ClientCertificate],
                RemoteCertificateValidationCallback = (_, certificate, _, errors) => ChainsTo(TrustedAuthority, certificate, errors),
            },
        };
        return GrpcChannel.ForAddress($"https://{address}", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }

    /// <summary>A server certificate is accepted when it names the host and chains to <paramref name="authority"/> alone.</summary>
    public static bool ChainsTo(X509Certificate2 authority, X509Certificate? certificate, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        return chain.Build(certificate as X509Certificate2 ?? new X509Certificate2(certificate));
    }

    public CallInvoker CreateInvoker(GrpcChannel channel) => Token is null
        ? channel.CreateCallInvoker()
        : channel.Intercept(metadata =>
        {
            metadata.Add("authorization", "Bearer " + Token);
            return metadata;
        });
}
