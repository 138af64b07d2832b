using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Repositories;
using Backrest.Agent.Core.Tests.Configuration;

namespace Backrest.Agent.Core.Tests.Repositories;

/// <summary>Each kind's validation and pgbackrest.conf lines, secrets from files and their rotation.</summary>
public sealed class RepositoryKindTests : IDisposable
{
    private static readonly PgBackRestCapabilities V245 = new(new Version(2, 45), new HashSet<string> { "gz", "lz4", "zst" });
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("repo-kinds-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string SecretFile(string name, string content)
    {
        var path = Path.Combine(_dir.FullName, name);
        File.WriteAllText(path, content);
        return path;
    }

    private static AgentOptions With(RepositoryOptions repo)
    {
        var options = AgentOptionsValidatorTests.Valid();
        options.Repositories.Add(repo);
        return options;
    }

    private static Dictionary<string, string> Global(AgentOptions options) =>
        PgBackRestConfigTests.Sections(PgBackRestConfig.Render(options, EffectiveSettings.Resolve(options.PgBackRest, V245, 1)))["global"];

    [Fact]
    public void ConfLines_S3WithSecretFilesKmsAndCaFile_RendersEveryOption()
    {
        var ca = SecretFile("ca.pem", "not checked here");
        var options = With(new RepositoryOptions
        {
            Type = "s3", Path = "/pg", CaFile = ca, CipherType = "aes-256-cbc", CipherPassFile = SecretFile("pass", "cipher-pass-1\n"),
            S3 = new S3RepositoryOptions
            {
                Bucket = "b", Endpoint = "s3.eu-west-1.amazonaws.com", Region = "eu-west-1", KmsKeyId = "arn:aws:kms:key/1",
                KeyFile = SecretFile("key", "AKIA1\n"), KeySecretFile = SecretFile("secret", "s3-secret-1\n"),
            },
        });
        Assert.Empty(AgentOptionsValidator.Validate(options, V245));

        var global = Global(options);
        Assert.Equal("s3", global["repo2-type"]);
        Assert.Equal("shared", global["repo2-s3-key-type"]);
        Assert.Equal("AKIA1", global["repo2-s3-key"]);
        Assert.Equal("s3-secret-1", global["repo2-s3-key-secret"]);
        Assert.Equal("arn:aws:kms:key/1", global["repo2-s3-kms-key-id"]);
        Assert.Equal("aes-256-cbc", global["repo2-cipher-type"]);
        Assert.Equal("cipher-pass-1", global["repo2-cipher-pass"]);
        Assert.Equal(ca, global["repo2-storage-ca-file"]);
        Assert.Equal("host", global["repo2-s3-uri-style"]);
        Assert.Equal("y", global["repo2-storage-verify-tls"]);
    }

    [Theory]
    [InlineData("arn:aws:kms:eu-west-1:1:key/1")]
    [InlineData(null)]
    public void LeasePut_S3_EncryptedWithTheRepositorysKmsKeyAsPgBackRestWrites(string? kmsKeyId)
    {
        // The headers the SDK sends for the lease write: a bucket policy that requires SSE-KMS (pgBackRest sends it for
        // every object with repo-s3-kms-key-id) would refuse the lease, and with it every backup.
        var request = S3Repository.LeasePut("b", "pg/backrest-agent/main/backup.lease", kmsKeyId, "{}"u8.ToArray());
        var headers = Amazon.S3.Model.Internal.MarshallTransformations.PutObjectRequestMarshaller.Instance.Marshall(request).Headers;

        Assert.Equal(kmsKeyId is null ? null : "aws:kms", headers.TryGetValue("x-amz-server-side-encryption", out var sse) ? sse : null);
        Assert.Equal(kmsKeyId, headers.TryGetValue("x-amz-server-side-encryption-aws-kms-key-id", out var key) ? key : null);
    }

    [Fact]
    public void ConfLines_S3AutoCredentials_NoKeyLines()
    {
        var options = With(new RepositoryOptions
        {
            Type = "s3", Path = "/pg", S3 = new S3RepositoryOptions { Bucket = "b", Endpoint = "s3.amazonaws.com", Region = "us-east-1", KeyType = "auto" },
        });
        Assert.Empty(AgentOptionsValidator.Validate(options, V245));
        var global = Global(options);
        Assert.Equal("auto", global["repo2-s3-key-type"]);
        Assert.False(global.ContainsKey("repo2-s3-key"));
        Assert.False(global.ContainsKey("repo2-s3-key-secret"));
    }

    [Fact]
    public void ConfLines_GcsTokenFromFileWithPortInEndpoint_RendersTokenVerbatim()
    {
        var options = With(new RepositoryOptions
        {
            Type = "gcs", Path = "/pg",
            Gcs = new GcsRepositoryOptions { Bucket = "b", Endpoint = "127.0.0.1:9443", KeyType = "token", KeyFile = SecretFile("token", "ya29.token\n"), VerifyTls = false },
        });
        Assert.Empty(AgentOptionsValidator.Validate(options, V245));
        var global = Global(options);
        Assert.Equal("127.0.0.1:9443", global["repo2-gcs-endpoint"]);
        Assert.Equal("token", global["repo2-gcs-key-type"]);
        Assert.Equal("ya29.token", global["repo2-gcs-key"]);
        Assert.Equal("n", global["repo2-storage-verify-tls"]);
        Assert.False(global.ContainsKey("repo2-storage-port"));
    }

    [Fact]
    public void ConfLines_GcsServiceKeyFile_PgBackRestGetsThePath()
    {
        var keyFile = SecretFile("sa.json", "{}");
        var options = With(new RepositoryOptions { Type = "gcs", Path = "/pg", Gcs = new GcsRepositoryOptions { Bucket = "b", KeyFile = keyFile } });
        Assert.Empty(AgentOptionsValidator.Validate(options, V245));
        Assert.Equal(keyFile, Global(options)["repo2-gcs-key"]);
    }

    [Fact]
    public void ConfLines_AzureSas_RendersKeyTypeAndToken()
    {
        var options = With(new RepositoryOptions
        {
            Type = "azure", Path = "/pg",
            Azure = new AzureRepositoryOptions { Account = "acct", Container = "c", KeyType = "sas", Key = "sv=2024&sig=abc", Endpoint = "127.0.0.1", UriStyle = "path", Port = 10000 },
        });
        Assert.Empty(AgentOptionsValidator.Validate(options, V245));
        var global = Global(options);
        Assert.Equal("sas", global["repo2-azure-key-type"]);
        Assert.Equal("sv=2024&sig=abc", global["repo2-azure-key"]);
        Assert.Equal("path", global["repo2-azure-uri-style"]);
        Assert.Equal("10000", global["repo2-storage-port"]);
    }

    [Fact]
    public void Validate_BadObjectStoreSettings_NameEveryKey()
    {
        var options = AgentOptionsValidatorTests.Valid();
        options.Repositories.Add(new RepositoryOptions
        {
            Type = "s3", Path = "pg", CipherType = "aes-256-cbc",
            S3 = new S3RepositoryOptions { Bucket = "b", Endpoint = "https://s3.amazonaws.com", Region = "r", UriStyle = "virtual", Key = "k", KeySecret = "s", KeySecretFile = "/nonexistent/secret" },
        });
        options.Repositories.Add(new RepositoryOptions { Type = "gcs", Path = "/pg", Gcs = new GcsRepositoryOptions { Bucket = "", KeyType = "token" } });
        options.Repositories.Add(new RepositoryOptions { Type = "azure", Path = "/pg", CaFile = "/nonexistent/ca.pem", Azure = new AzureRepositoryOptions { Account = "a", Container = "c", KeyType = "oauth" } });

        var errors = AgentOptionsValidator.Validate(options, V245);

        string[] expected =
        [
            "Agent:Repositories:1:Path 'pg' must start with '/'",
            "Agent:Repositories:1:CipherPass (or Agent:Repositories:1:CipherPassFile, a file holding it) is required.",
            "Agent:Repositories:1:S3:Endpoint 'https://s3.amazonaws.com' must be a host name",
            "Agent:Repositories:1:S3:UriStyle 'virtual' is not valid (use host or path).",
            "Agent:Repositories:1:S3:KeySecret and Agent:Repositories:1:S3:KeySecretFile are both set",
            "Agent:Repositories:2:Gcs:Bucket is required.",
            "Agent:Repositories:2:Gcs:Key (or Agent:Repositories:2:Gcs:KeyFile, a file holding it) is required.",
            "Agent:Repositories:3:CaFile '/nonexistent/ca.pem' cannot be read",
            "Agent:Repositories:3:Azure:KeyType 'oauth' is not valid (use shared or sas).",
            "Agent:Repositories:3:Azure:Key (or Agent:Repositories:3:Azure:KeyFile, a file holding it) is required.",
        ];
        foreach (var error in expected)
        {
            Assert.Contains(errors, e => e.StartsWith(error, StringComparison.Ordinal));
        }

        Assert.Equal(expected.Length, errors.Count);
    }

    [Fact]
    public void Validate_SecretFileUnreadable_NamesTheFileKey()
    {
        var options = With(new RepositoryOptions
        {
            Type = "azure", Path = "/pg", Azure = new AzureRepositoryOptions { Account = "a", Container = "c", KeyFile = Path.Combine(_dir.FullName, "missing") },
        });
        var error = Assert.Single(AgentOptionsValidator.Validate(options, V245));
        Assert.StartsWith("Agent:Repositories:1:Azure:KeyFile '", error);
    }

    [Fact]
    public void Validate_PosixWithObjectStoreSection_IsRefused()
    {
        var options = AgentOptionsValidatorTests.Valid();
        options.Repositories[0].S3 = new S3RepositoryOptions();
        var error = Assert.Single(AgentOptionsValidator.Validate(options, V245));
        Assert.StartsWith("Agent:Repositories:0:S3 is set but Agent:Repositories:0:Type is posix", error);
    }

    [Fact]
    public void EnsureCurrent_SecretFileRotated_NextRenderUsesTheNewSecret()
    {
        var secretFile = SecretFile("secret", "first-secret\n");
        var options = With(new RepositoryOptions
        {
            Type = "s3", Path = "/pg", S3 = new S3RepositoryOptions { Bucket = "b", Endpoint = "e", Region = "r", Key = "k", KeySecretFile = secretFile },
        });
        options.PgBackRest.ConfigPath = Path.Combine(_dir.FullName, "conf", "pgbackrest.conf");
        var runtime = new AgentRuntime(V245, EffectiveSettings.Resolve(options.PgBackRest, V245, 1), 1);
        var file = new PgBackRestConfigFile(options, runtime);

        var path = file.EnsureCurrent();
        Assert.Contains("repo2-s3-key-secret=first-secret\n", File.ReadAllText(path));

        // Kubernetes swaps the mounted file on rotation; the agent's next pgBackRest run must see the new one.
        File.WriteAllText(secretFile, "second-secret\n");
        Assert.Contains("repo2-s3-key-secret=second-secret\n", File.ReadAllText(file.EnsureCurrent()));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));

        var repoOnly = File.ReadAllText(file.EnsureCurrentFor(2));
        Assert.Contains("repo2-type=s3", repoOnly);
        Assert.DoesNotContain("repo1-", repoOnly);
    }

    [Fact]
    public void Scrub_MessageEchoingSecrets_ReplacesEach()
    {
        var repo = new RepositoryOptions
        {
            Type = "s3", Path = "/pg", CipherType = "aes-256-cbc", CipherPass = "pass-phrase",
            S3 = new S3RepositoryOptions { Bucket = "b", Endpoint = "e", Region = "r", Key = "AKIAKEY", KeySecretFile = SecretFile("s", "topsecret\n") },
        };
        var secrets = RepositoryKind.Of(repo).SecretValues(repo, "Agent:Repositories:1").ToList();
        var scrubbed = RepositoryKind.Scrub("key AKIAKEY secret topsecret pass pass-phrase", secrets);
        Assert.Equal("key (redacted) secret (redacted) pass (redacted)", scrubbed);
    }
}
