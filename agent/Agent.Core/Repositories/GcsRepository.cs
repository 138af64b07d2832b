using Backrest.Agent.Core.Configuration;
using Google.Apis.Auth.OAuth2;
using Google.Apis.Http;
using Google.Cloud.Storage.V1;

namespace Backrest.Agent.Core.Repositories;

/// <summary>A Google Cloud Storage bucket. Probe: list one object under the path, through Google.Cloud.Storage.V1.</summary>
public sealed class GcsRepository : RepositoryKind
{
    public override string Type => "gcs";

    protected override void ValidateKind(RepositoryOptions repo, string at, List<string> errors)
    {
        ObjectStorePath(errors, at, repo.Path);
        if (repo.Gcs is not { } gcs)
        {
            errors.Add($"{at}:Gcs is required for this repository type (Bucket and credentials).");
            return;
        }

        var key = at + ":Gcs";
        Require(errors, $"{key}:Bucket", gcs.Bucket);
        HostEndpoint(errors, $"{key}:Endpoint", gcs.Endpoint);
        OneOf(errors, $"{key}:KeyType", gcs.KeyType, "service", "token", "auto");
        if (gcs.KeyType == "auto")
        {
            if ((gcs.Key ?? gcs.KeyFile) is not null)
            {
                errors.Add($"{key}:KeyType is auto (the node's credentials) but a Key is set: remove it or use KeyType=service or token.");
            }
        }
        else if (gcs.KeyType == "service" && gcs.Key is { } keyPath && gcs.KeyFile is null)
        {
            // For a service account, pgBackRest's gcs-key is the path of the JSON key file.
            Secret.ValidateFile(errors, $"{key}:Key", keyPath);
        }
        else
        {
            Secret.Validate(errors, $"{key}:Key", gcs.Key, gcs.KeyFile, required: true);
        }
    }

    protected override IEnumerable<(string Key, string Value)> KindLines(RepositoryOptions repo, string at)
    {
        var gcs = repo.Gcs!;
        yield return ("gcs-bucket", gcs.Bucket);
        yield return ("gcs-key-type", gcs.KeyType);
        if (gcs.Endpoint is not null)
        {
            yield return ("gcs-endpoint", gcs.Endpoint);
        }

        switch (gcs.KeyType)
        {
            case "service":
                // pgBackRest reads the JSON key file itself, so it is re-read on rotation by each run.
                yield return ("gcs-key", gcs.KeyFile ?? gcs.Key!);
                break;
            case "token":
                yield return ("gcs-key", Secret.Read($"{at}:Gcs:Key", gcs.Key, gcs.KeyFile)!);
                break;
        }

        yield return ("storage-verify-tls", gcs.VerifyTls ? "y" : "n");
    }

    protected override IEnumerable<string?> KindSecrets(RepositoryOptions repo, string at) => repo.Gcs is { KeyType: "token" } gcs
        ? [SafeRead($"{at}:Gcs:Key", gcs.Key, gcs.KeyFile)]
        : [];

    protected override async Task<ProbeOutcome> ProbeKindAsync(RepositoryOptions repo, string at, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var gcs = repo.Gcs!;
        using var client = await ClientAsync(repo, at, timeout, "read_only", cancellationToken).ConfigureAwait(false);
        var page = await client.ListObjectsAsync(gcs.Bucket, Prefix(repo.Path), new ListObjectsOptions { PageSize = 1 })
            .ReadPageAsync(1, cancellationToken).ConfigureAwait(false);
        return new ProbeOutcome(page.Any() ? null : "the path holds no object yet");
    }

    public override ILeaseObject OpenLeaseObject(RepositoryOptions repo, string at, string name, TimeSpan timeout) =>
        new GcsLeaseObject(ct => ClientAsync(repo, at, timeout, "read_write", ct), repo.Gcs!.Bucket, Prefix(repo.Path) + name);

    /// <summary>
    /// Uploads with ifGenerationMatch=0 (create only) and the generation read (replace, delete): Cloud Storage enforces
    /// them, the Firebase emulator does not, so the lease also reads back (EnforcesConditions false).
    /// </summary>
    private sealed class GcsLeaseObject(Func<CancellationToken, Task<StorageClient>> connect, string bucket, string name) : ILeaseObject
    {
        private StorageClient? _client;

        public bool EnforcesConditions => false;

        public Task<bool> TryCreateAsync(byte[] content, CancellationToken cancellationToken) =>
            UploadAsync(content, 0, cancellationToken);

        public async Task<LeaseObjectVersion?> ReadAsync(CancellationToken cancellationToken)
        {
            var client = await ClientAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                using var buffer = new MemoryStream();
                var read = await client.DownloadObjectAsync(bucket, name, buffer, cancellationToken: cancellationToken).ConfigureAwait(false);
                return new LeaseObjectVersion(buffer.ToArray(), read.Generation?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "");
            }
            catch (Google.GoogleApiException ex) when (ex.HttpStatusCode == System.Net.HttpStatusCode.NotFound)
            {
                return null;
            }
        }

        public Task<bool> TryReplaceAsync(byte[] content, string version, CancellationToken cancellationToken) =>
            UploadAsync(content, long.Parse(version, System.Globalization.CultureInfo.InvariantCulture), cancellationToken);

        public async Task DeleteAsync(string version, CancellationToken cancellationToken)
        {
            var client = await ClientAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await client.DeleteObjectAsync(bucket, name,
                    new DeleteObjectOptions { IfGenerationMatch = long.Parse(version, System.Globalization.CultureInfo.InvariantCulture) }, cancellationToken).ConfigureAwait(false);
            }
            catch (Google.GoogleApiException ex) when (ex.HttpStatusCode is System.Net.HttpStatusCode.NotFound or System.Net.HttpStatusCode.PreconditionFailed)
            {
                // Gone, or no longer ours.
            }
        }

        private async Task<bool> UploadAsync(byte[] content, long generation, CancellationToken cancellationToken)
        {
            var client = await ClientAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await client.UploadObjectAsync(bucket, name, "application/json", new MemoryStream(content),
                    new UploadObjectOptions { IfGenerationMatch = generation }, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (Google.GoogleApiException ex) when (ex.HttpStatusCode is System.Net.HttpStatusCode.PreconditionFailed or System.Net.HttpStatusCode.NotFound)
            {
                return false;
            }
        }

        private async Task<StorageClient> ClientAsync(CancellationToken cancellationToken) =>
            _client ??= await connect(cancellationToken).ConfigureAwait(false);

        public void Dispose() => _client?.Dispose();
    }

    private static async Task<StorageClient> ClientAsync(RepositoryOptions repo, string at, TimeSpan timeout, string scope, CancellationToken cancellationToken)
    {
        var gcs = repo.Gcs!;
        var builder = new StorageClientBuilder
        {
            HttpClientFactory = new ProbeHttpClientFactory(gcs.VerifyTls, repo.CaFile, timeout),
        };
        if (gcs.Endpoint is { } endpoint)
        {
            builder.BaseUri = $"https://{endpoint}/storage/v1/";
        }

        switch (gcs.KeyType)
        {
            case "token":
                builder.GoogleCredential = GoogleCredential.FromAccessToken(Secret.Read($"{at}:Gcs:Key", gcs.Key, gcs.KeyFile));
                break;
            case "service":
                builder.GoogleCredential = (await CredentialFactory.FromFileAsync<ServiceAccountCredential>(gcs.KeyFile ?? gcs.Key!, cancellationToken)
                    .ConfigureAwait(false)).ToGoogleCredential().CreateScoped("https://www.googleapis.com/auth/devstorage." + scope);
                break;
        }

        var client = await builder.BuildAsync(cancellationToken).ConfigureAwait(false);
        client.Service.HttpClient.Timeout = timeout;
        return client;
    }

    private sealed class ProbeHttpClientFactory(bool verifyTls, string? caFile, TimeSpan timeout) : HttpClientFactory
    {
        protected override HttpMessageHandler CreateHandler(CreateHttpClientArgs args) => TlsTrust.CreateHandler(verifyTls, caFile, timeout);
    }
}
