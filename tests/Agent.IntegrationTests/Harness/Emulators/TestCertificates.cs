using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Backrest.Agent.IntegrationTests.Harness.Emulators;

/// <summary>
/// A certificate authority made for this test run and one server certificate it signed, for every emulator on
/// 127.0.0.1. The server's subjectAltName holds DNS:127.0.0.1 and DNS:localhost (pgBackRest 2.45 matches DNS names
/// only) and IP:127.0.0.1 (what the SDKs match). Files in /tmp/bra-tls-XXXXXX, removed when the test host exits:
/// ca.pem (readable by postgres, for repo-storage-ca-file), server.pem and server.key (read by the emulators, as root).
/// </summary>
public sealed class TestCertificates
{
    private static readonly Lazy<TestCertificates> Shared = new(Create);

    private TestCertificates(string directory, X509Certificate2 authority)
    {
        Directory = directory;
        Authority = authority;
    }

    /// <summary>The one set of this test run.</summary>
    public static TestCertificates Instance => Shared.Value;

    public string Directory { get; }

    public X509Certificate2 Authority { get; }

    public string AuthorityFile => Path.Combine(Directory, "ca.pem");

    public string ServerCertificateFile => Path.Combine(Directory, "server.pem");

    public string ServerKeyFile => Path.Combine(Directory, "server.key");

    /// <summary>A handler whose connections trust exactly this run's authority (for waiting on an emulator, or an SDK).</summary>
    public HttpClientHandler CreateTrustingHandler() => new()
    {
        ServerCertificateCustomValidationCallback = (_, certificate, _, errors) => ClientSecurity.ChainsTo(Authority, certificate, errors),
    };

    private static TestCertificates Create()
    {
        var directory = Libc.MakeTempDirectory("/tmp/bra-tls-XXXXXX");
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
            UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        LeakGuard.Register(directory, () => System.IO.Directory.Delete(directory, recursive: true));

        var now = DateTimeOffset.UtcNow;
        using var caKey = RSA.Create(2048);
        var caRequest = new CertificateRequest("CN=backrest-agent test CA", caKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        var authority = caRequest.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(2));

        using var serverKey = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", serverKey, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("127.0.0.1");
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
        using var server = request.Create(authority, now.AddMinutes(-5), now.AddDays(1), RandomNumberGenerator.GetBytes(16));

        var certificates = new TestCertificates(directory, authority);
        Write(certificates.AuthorityFile, authority.ExportCertificatePem(), readableByAll: true);
        Write(certificates.ServerCertificateFile, server.ExportCertificatePem(), readableByAll: true);
        Write(certificates.ServerKeyFile, serverKey.ExportPkcs8PrivateKeyPem(), readableByAll: false);
        return certificates;
    }

    private static void Write(string path, string pem, bool readableByAll)
    {
        File.WriteAllText(path, pem + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite |
            (readableByAll ? UnixFileMode.GroupRead | UnixFileMode.OtherRead : UnixFileMode.None));
    }
}
