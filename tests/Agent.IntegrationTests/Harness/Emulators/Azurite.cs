using System.Globalization;
using System.Xml.Linq;
using Azure.Core.Pipeline;
using Azure.Storage;
using Azure.Storage.Blobs;

namespace Backrest.Agent.IntegrationTests.Harness.Emulators;

/// <summary>
/// Azure Blob: Azurite 3.37.0 (blob service only, data in memory) with its well-known development account, and the
/// container <see cref="Container"/> created at start (pgBackRest never creates one). --skipApiVersionCheck: the
/// Azure SDK speaks a newer service version than Azurite knows; pgBackRest's 2019-02-02 passes anyway.
/// </summary>
public sealed class Azurite : StorageEmulator
{
    public const string Account = "devstoreaccount1";
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    public const string Container = "pgbackrest";

    public override string Kind => "azure";

    public override IReadOnlyDictionary<string, string?> RepositorySettings(int index, string path)
    {
        var at = $"Agent__Repositories__{index}__";
        return new Dictionary<string, string?>
        {
            [at + "Type"] = "azure",
            [at + "Path"] = path,
            [at + "Azure__Account"] = Account,
            [at + "Azure__Container"] = Container,
            [at + "Azure__Key"] = AccountKey,
            [at + "Azure__Endpoint"] = "127.0.0.1",
            [at + "Azure__Port"] = Port.ToString(CultureInfo.InvariantCulture),
            [at + "Azure__UriStyle"] = "path",
            [at + "CaFile"] = TestCertificates.Instance.AuthorityFile,
        };
    }

    /// <summary>
    /// Creates containers (if missing) with the SDK, through our node script; public ones can be listed without a key
    /// (<see cref="StorageEmulator.ListObjectsAsync"/>), but Azurite then also lets a request with a wrong key read them.
    /// </summary>
    public async Task CreateContainersAsync(bool publicRead, params string[] names)
    {
        var result = await OsCommand.RunAsync(
            "node",
            [HarnessPaths.EmulatorScript("azure-container.js"), $"{Url}/{Account}", Account, .. names],
            new CommandOptions
            {
                Environment = new Dictionary<string, string?>
                {
                    ["NODE_PATH"] = HarnessPaths.EmulatorModules,
                    ["NODE_EXTRA_CA_CERTS"] = TestCertificates.Instance.AuthorityFile,
                    ["AZURE_STORAGE_KEY"] = AccountKey,
                    ["AZURE_CONTAINER_ACCESS"] = publicRead ? "container" : "private",
                },
                Timeout = TimeSpan.FromSeconds(60),
            });
        result.EnsureSuccess();
    }

    /// <summary>With the account key through the Azure SDK: Azurite allows no anonymous write, even to a public container.</summary>
    public override async Task DeleteObjectAsync(string name) => await ContainerClient().DeleteBlobAsync(name);

    /// <summary>Overwrites the blob <paramref name="target"/> with the content of <paramref name="source"/>, through the Azure SDK.</summary>
    public async Task CopyObjectAsync(string source, string target)
    {
        var container = ContainerClient();
        var content = (await container.GetBlobClient(source).DownloadContentAsync()).Value.Content;
        await container.GetBlobClient(target).UploadAsync(content, overwrite: true);
    }

    private BlobContainerClient ContainerClient() => new(
        new Uri($"{Url}/{Account}/{Container}"),
        new StorageSharedKeyCredential(Account, AccountKey),
        new BlobClientOptions { Transport = new HttpClientTransport(TestCertificates.Instance.CreateTrustingHandler()) });

    protected override string ListUrl(string prefix, string? pageToken) =>
        $"{Url}/{Account}/{Container}?restype=container&comp=list&prefix={prefix}" + (pageToken is null ? "" : $"&marker={pageToken}");

    protected override string? ReadListPage(string page, List<string> names)
    {
        var root = XDocument.Parse(page).Root!;
        names.AddRange(root.Descendants("Blob").Select(b => b.Element("Name")!.Value));
        return root.Element("NextMarker")?.Value is { Length: > 0 } marker ? marker : null;
    }

    protected override IEnumerable<string> NodeArguments(string modules, TestCertificates certificates) =>
    [
        Path.Combine(modules, "azurite", "dist", "src", "blob", "main.js"),
        "--blobHost", "127.0.0.1",
        "--blobPort", Port.ToString(CultureInfo.InvariantCulture),
        "--cert", certificates.ServerCertificateFile,
        "--key", certificates.ServerKeyFile,
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--skipApiVersionCheck",
    ];

    protected override Task AfterStartAsync(CancellationToken cancellationToken) => CreateContainersAsync(publicRead: true, Container);
}
