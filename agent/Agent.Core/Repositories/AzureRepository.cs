using Azure;
using Azure.Core.Pipeline;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Core.Repositories;

/// <summary>An Azure Blob Storage container. Probe: list one blob under the path, through Azure.Storage.Blobs.</summary>
public sealed class AzureRepository : RepositoryKind
{
    private const string DefaultEndpoint = "blob.core.windows.net";

    public override string Type => "azure";

    protected override void ValidateKind(RepositoryOptions repo, string at, List<string> errors)
    {
        ObjectStorePath(errors, at, repo.Path);
        if (repo.Azure is not { } az)
        {
            errors.Add($"{at}:Azure is required for this repository type (Account, Container and Key).");
            return;
        }

        var key = at + ":Azure";
        Require(errors, $"{key}:Account", az.Account);
        Require(errors, $"{key}:Container", az.Container);
        HostEndpoint(errors, $"{key}:Endpoint", az.Endpoint);
        OneOf(errors, $"{key}:UriStyle", az.UriStyle, "host", "path");
        OneOf(errors, $"{key}:KeyType", az.KeyType, "shared", "sas");
        Port(errors, $"{key}:Port", az.Port);
        Secret.Validate(errors, $"{key}:Key", az.Key, az.KeyFile, required: true);
    }

    protected override IEnumerable<(string Key, string Value)> KindLines(RepositoryOptions repo, string at)
    {
        var az = repo.Azure!;
        yield return ("azure-account", az.Account);
        yield return ("azure-container", az.Container);
        yield return ("azure-key-type", az.KeyType);
        yield return ("azure-uri-style", az.UriStyle);
        yield return ("azure-key", Key(az, at));
        if (az.Endpoint is not null)
        {
            yield return ("azure-endpoint", az.Endpoint);
        }

        if (az.Port is { } port)
        {
            yield return ("storage-port", port.ToString());
        }

        yield return ("storage-verify-tls", az.VerifyTls ? "y" : "n");
    }

    protected override IEnumerable<string?> KindSecrets(RepositoryOptions repo, string at) => repo.Azure is { } az
        ? [SafeRead($"{at}:Azure:Key", az.Key, az.KeyFile)]
        : [];

    protected override async Task<ProbeOutcome> ProbeKindAsync(RepositoryOptions repo, string at, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var container = Container(repo, at, timeout);
        await foreach (var page in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, Prefix(repo.Path), cancellationToken)
                           .AsPages(pageSizeHint: 1).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            return new ProbeOutcome(page.Values.Count > 0 ? null : "the path holds no object yet");
        }

        return new ProbeOutcome("the path holds no object yet");
    }

    public override ILeaseObject OpenLeaseObject(RepositoryOptions repo, string at, string name, TimeSpan timeout) =>
        new AzureLeaseObject(Container(repo, at, timeout).GetBlobClient(Prefix(repo.Path) + name));

    /// <summary>Put Blob with If-None-Match: * (409 BlobAlreadyExists when present), If-Match: ETag to replace or delete.</summary>
    private sealed class AzureLeaseObject(BlobClient blob) : ILeaseObject
    {
        public bool EnforcesConditions => true;

        public async Task<bool> TryCreateAsync(byte[] content, CancellationToken cancellationToken)
        {
            try
            {
                await blob.UploadAsync(BinaryData.FromBytes(content),
                    new BlobUploadOptions { Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All } }, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (RequestFailedException ex) when (ex.Status is 409 or 412)
            {
                return false;
            }
        }

        public async Task<LeaseObjectVersion?> ReadAsync(CancellationToken cancellationToken)
        {
            try
            {
                var download = await blob.DownloadContentAsync(cancellationToken).ConfigureAwait(false);
                return new LeaseObjectVersion(download.Value.Content.ToArray(), download.Value.Details.ETag.ToString());
            }
            catch (RequestFailedException ex) when (ex.Status == 404)
            {
                return null;
            }
        }

        public async Task<bool> TryReplaceAsync(byte[] content, string version, CancellationToken cancellationToken)
        {
            try
            {
                await blob.UploadAsync(BinaryData.FromBytes(content),
                    new BlobUploadOptions { Conditions = new BlobRequestConditions { IfMatch = new ETag(version) } }, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 409 or 412)
            {
                return false;
            }
        }

        public async Task DeleteAsync(string version, CancellationToken cancellationToken)
        {
            try
            {
                await blob.DeleteAsync(DeleteSnapshotsOption.None, new BlobRequestConditions { IfMatch = new ETag(version) }, cancellationToken).ConfigureAwait(false);
            }
            catch (RequestFailedException ex) when (ex.Status is 404 or 412)
            {
                // Gone, or no longer ours.
            }
        }

        public void Dispose()
        {
        }
    }

    private static BlobContainerClient Container(RepositoryOptions repo, string at, TimeSpan timeout)
    {
        var az = repo.Azure!;
        var host = az.Endpoint ?? DefaultEndpoint;
        var port = az.Port ?? 443;
        var uri = az.UriStyle == "path"
            ? new Uri($"https://{host}:{port}/{az.Account}/{az.Container}")
            : new Uri($"https://{az.Account}.{host}:{port}/{az.Container}");
        // An older service version than the SDK's newest: Azurite and Azure Stack lag behind the SDK.
        var options = new BlobClientOptions(BlobClientOptions.ServiceVersion.V2025_01_05)
        {
            Transport = new HttpClientTransport(TlsTrust.CreateHandler(az.VerifyTls, repo.CaFile, timeout)),
        };
        options.Retry.MaxRetries = 0;
        options.Retry.NetworkTimeout = timeout;
        var key = Key(az, at);
        return az.KeyType == "sas"
            ? new BlobContainerClient(uri, new AzureSasCredential(key), options)
            : new BlobContainerClient(uri, new StorageSharedKeyCredential(az.Account, key), options);
    }

    private static string Key(AzureRepositoryOptions az, string at) => Secret.Read($"{at}:Azure:Key", az.Key, az.KeyFile)!;
}
