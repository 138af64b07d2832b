using System.Net;
using System.Net.Sockets;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Repositories;

namespace Backrest.Agent.Core.Tests.Repositories;

/// <summary>
/// Probes through the real SDKs against addresses that fail in a known way (a closed port, a name that cannot resolve,
/// a port that accepts and never answers), so the classification is checked against the exceptions the SDKs really throw.
/// </summary>
public class ProbeTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static TheoryData<string> Kinds => ["s3", "gcs", "azure"];

    private static RepositoryOptions Repo(string kind, string host, int port) => kind switch
    {
        "s3" => new RepositoryOptions
        {
            Type = "s3", Path = "/pg",
            S3 = new S3RepositoryOptions { Bucket = "b", Endpoint = host, Port = port, Region = "us-east-1", UriStyle = "path", Key = "AKIAPROBE", KeySecret = "probe-secret-value" },
        },
        "gcs" => new RepositoryOptions
        {
            Type = "gcs", Path = "/pg", Gcs = new GcsRepositoryOptions { Bucket = "b", Endpoint = $"{host}:{port}", KeyType = "token", Key = "probe-token-value" },
        },
        _ => new RepositoryOptions
        {
            Type = "azure", Path = "/pg",
            Azure = new AzureRepositoryOptions { Account = "devstoreaccount1", Container = "c", Key = "cHJvYmUta2V5LXZhbHVl", Endpoint = host, Port = port, UriStyle = "path" },
        },
    };

    private static Task<ProbeResult> ProbeAsync(RepositoryOptions repo) =>
        RepositoryKind.Of(repo).ProbeAsync(repo, "Agent:Repositories:1", Timeout, TimeProvider.System, CancellationToken.None);

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ProbeAsync_ClosedPort_Connect(string kind)
    {
        var result = await ProbeAsync(Repo(kind, "127.0.0.1", ClosedPort()));
        Assert.False(result.Reachable);
        Assert.True(result.ErrorClass == ProbeErrorClass.Connect, $"{result.ErrorClass}: {result.Message}");
        Assert.True(result.Latency < Timeout, $"took {result.Latency}");
        Assert.DoesNotContain("probe-secret-value", result.Message);
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ProbeAsync_UnresolvableHost_Dns(string kind)
    {
        var result = await ProbeAsync(Repo(kind, "nonexistent.invalid", 443));
        Assert.False(result.Reachable);
        Assert.True(result.ErrorClass == ProbeErrorClass.Dns, $"{result.ErrorClass}: {result.Message}");
    }

    [Theory]
    [MemberData(nameof(Kinds))]
    public async Task ProbeAsync_PortThatNeverAnswers_TimeoutWithinTheLimit(string kind)
    {
        // A listening socket nobody accepts from: the TCP handshake completes, the TLS hello is never answered.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var result = await ProbeAsync(Repo(kind, "127.0.0.1", ((IPEndPoint)silent.LocalEndpoint).Port));
        Assert.False(result.Reachable);
        Assert.True(result.ErrorClass == ProbeErrorClass.Timeout, $"{result.ErrorClass}: {result.Message}");
        Assert.True(result.Latency < Timeout + TimeSpan.FromSeconds(2), $"took {result.Latency}");
    }

    [Fact]
    public async Task ProbeAsync_PosixPathNotCreatedYet_ReachableWithFreeBytes()
    {
        var dir = Directory.CreateTempSubdirectory("probe-");
        try
        {
            var result = await ProbeAsync(new RepositoryOptions { Type = "posix", Path = Path.Combine(dir.FullName, "repo", "sub") });
            Assert.True(result.Reachable, result.Message);
            Assert.True(result.FreeBytes > 0);
            Assert.Contains("does not exist yet", result.Message);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Name_NotFound_IsSpelledWithADash() =>
        Assert.Equal(["dns", "connect", "tls", "auth", "not-found", "permission", "timeout", "other"], Enum.GetValues<ProbeErrorClass>().Select(ProbeResult.Name));
}
