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
        var container = az.KeyType == "sas"
            ? new BlobContainerClient(uri, new AzureSasCredential(key), options)
            : new BlobContainerClient(uri, new StorageSharedKeyCredential(az.Account, key), options);
        await foreach (var page in container.GetBlobsAsync(BlobTraits.None, BlobStates.None, Prefix(repo.Path), cancellationToken)
                           .AsPages(pageSizeHint: 1).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            return new ProbeOutcome(page.Values.Count > 0 ? null : "the path holds no object yet");
        }

        return new ProbeOutcome("the path holds no object yet");
    }

    private static string Key(AzureRepositoryOptions az, string at) => Secret.Read($"{at}:Azure:Key", az.Key, az.KeyFile)!;
}
