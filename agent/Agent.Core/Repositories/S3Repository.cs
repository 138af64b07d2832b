using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Core.Repositories;

/// <summary>An S3 (or S3-compatible) bucket. Probe: ListObjectsV2 of one key under the path, through AWSSDK.S3.</summary>
public sealed class S3Repository : RepositoryKind
{
    public override string Type => "s3";

    protected override void ValidateKind(RepositoryOptions repo, string at, List<string> errors)
    {
        ObjectStorePath(errors, at, repo.Path);
        if (repo.S3 is not { } s3)
        {
            errors.Add($"{at}:S3 is required for this repository type (Bucket, Endpoint, Region, credentials).");
            return;
        }

        var key = at + ":S3";
        Require(errors, $"{key}:Bucket", s3.Bucket);
        Require(errors, $"{key}:Endpoint", s3.Endpoint);
        Require(errors, $"{key}:Region", s3.Region);
        HostEndpoint(errors, $"{key}:Endpoint", s3.Endpoint);
        OneOf(errors, $"{key}:UriStyle", s3.UriStyle, "host", "path");
        Port(errors, $"{key}:Port", s3.Port);
        OneOf(errors, $"{key}:KeyType", s3.KeyType, "shared", "auto");
        if (s3.KeyType == "auto")
        {
            if ((s3.Key ?? s3.KeyFile ?? s3.KeySecret ?? s3.KeySecretFile) is not null)
            {
                errors.Add($"{key}:KeyType is auto (the instance's role) but a Key or KeySecret is set: remove them or use KeyType=shared.");
            }
        }
        else
        {
            Secret.Validate(errors, $"{key}:Key", s3.Key, s3.KeyFile, required: true);
            Secret.Validate(errors, $"{key}:KeySecret", s3.KeySecret, s3.KeySecretFile, required: true);
        }
    }

    protected override IEnumerable<(string Key, string Value)> KindLines(RepositoryOptions repo, string at)
    {
        var s3 = repo.S3!;
        yield return ("s3-bucket", s3.Bucket);
        yield return ("s3-endpoint", s3.Endpoint);
        yield return ("s3-region", s3.Region);
        yield return ("s3-uri-style", s3.UriStyle);
        yield return ("s3-key-type", s3.KeyType);
        if (s3.KeyType == "shared")
        {
            yield return ("s3-key", Secret.Read($"{at}:S3:Key", s3.Key, s3.KeyFile)!);
            yield return ("s3-key-secret", Secret.Read($"{at}:S3:KeySecret", s3.KeySecret, s3.KeySecretFile)!);
        }

        if (s3.KmsKeyId is { } kms)
        {
            yield return ("s3-kms-key-id", kms);
        }

        if (s3.Port is { } port)
        {
            yield return ("storage-port", port.ToString());
        }

        yield return ("storage-verify-tls", s3.VerifyTls ? "y" : "n");
    }

    protected override IEnumerable<string?> KindSecrets(RepositoryOptions repo, string at) => repo.S3 is { } s3
        ? [SafeRead($"{at}:S3:Key", s3.Key, s3.KeyFile), SafeRead($"{at}:S3:KeySecret", s3.KeySecret, s3.KeySecretFile)]
        : [];

    protected override async Task<ProbeOutcome> ProbeKindAsync(RepositoryOptions repo, string at, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var s3 = repo.S3!;
        using var client = Client(repo, at, timeout);
        var listed = await client.ListObjectsV2Async(
            new ListObjectsV2Request { BucketName = s3.Bucket, Prefix = Prefix(repo.Path), MaxKeys = 1 }, cancellationToken).ConfigureAwait(false);
        return new ProbeOutcome(listed.KeyCount is > 0 ? null : "the path holds no object yet");
    }

    public override ILeaseObject OpenLeaseObject(RepositoryOptions repo, string at, string name, TimeSpan timeout) =>
        new S3LeaseObject(Client(repo, at, timeout), repo.S3!.Bucket, Prefix(repo.Path) + name, repo.S3.KmsKeyId);

    /// <summary>
    /// A lease write: a plain body (S3-compatible stores and s3rver mishandle aws-chunked uploads with checksum trailers),
    /// and, with Agent:Repositories:N:S3:KmsKeyId, SSE-KMS with that key as pgBackRest writes every object of the
    /// repository (repo-s3-kms-key-id): a bucket policy that requires it would refuse a plain put, and every backup with it.
    /// </summary>
    internal static PutObjectRequest LeasePut(string bucket, string key, string? kmsKeyId, byte[] content)
    {
        var request = new PutObjectRequest { BucketName = bucket, Key = key, InputStream = new MemoryStream(content), UseChunkEncoding = false };
        if (kmsKeyId is not null)
        {
            request.ServerSideEncryptionMethod = ServerSideEncryptionMethod.AWSKMS;
            request.ServerSideEncryptionKeyManagementServiceKeyId = kmsKeyId;
        }

        return request;
    }

    /// <summary>
    /// PutObject with If-None-Match: * (412 when present) and If-Match: ETag, which AWS S3 enforces since 2024. Several
    /// S3-compatible stores and s3rver accept and ignore them, so the lease also reads back (EnforcesConditions false).
    /// </summary>
    private sealed class S3LeaseObject(AmazonS3Client client, string bucket, string key, string? kmsKeyId) : ILeaseObject
    {
        public bool EnforcesConditions => false;

        public async Task<bool> TryCreateAsync(byte[] content, CancellationToken cancellationToken)
        {
            var request = LeasePut(bucket, key, kmsKeyId, content);
            request.IfNoneMatch = "*";
            return await PutAsync(request, cancellationToken).ConfigureAwait(false);
        }

        public async Task<LeaseObjectVersion?> ReadAsync(CancellationToken cancellationToken)
        {
            try
            {
                using var response = await client.GetObjectAsync(bucket, key, cancellationToken).ConfigureAwait(false);
                using var buffer = new MemoryStream();
                await response.ResponseStream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
                return new LeaseObjectVersion(buffer.ToArray(), response.ETag);
            }
            catch (AmazonS3Exception ex) when (ex.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                return null;
            }
        }

        public async Task<bool> TryReplaceAsync(byte[] content, string version, CancellationToken cancellationToken)
        {
            var request = LeasePut(bucket, key, kmsKeyId, content);
            request.IfMatch = version;
            return await PutAsync(request, cancellationToken).ConfigureAwait(false);
        }

        public async Task DeleteAsync(string version, CancellationToken cancellationToken)
        {
            try
            {
                await client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = bucket, Key = key, IfMatch = version }, cancellationToken).ConfigureAwait(false);
            }
            catch (AmazonS3Exception ex) when (ex.StatusCode is System.Net.HttpStatusCode.NotFound or System.Net.HttpStatusCode.PreconditionFailed)
            {
                // Gone, or no longer ours.
            }
        }

        private async Task<bool> PutAsync(PutObjectRequest request, CancellationToken cancellationToken)
        {
            try
            {
                await client.PutObjectAsync(request, cancellationToken).ConfigureAwait(false);
                return true;
            }
            catch (AmazonS3Exception ex) when (ex.StatusCode is System.Net.HttpStatusCode.PreconditionFailed or System.Net.HttpStatusCode.Conflict
                                                   or System.Net.HttpStatusCode.NotFound)
            {
                return false;
            }
        }

        public void Dispose() => client.Dispose();
    }

    private static AmazonS3Client Client(RepositoryOptions repo, string at, TimeSpan timeout)
    {
        var s3 = repo.S3!;
        var config = new AmazonS3Config
        {
            ServiceURL = $"https://{s3.Endpoint}:{s3.Port ?? 443}",
            ForcePathStyle = s3.UriStyle == "path",
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
            AuthenticationRegion = s3.Region,
            MaxErrorRetry = 0,
            Timeout = timeout,
            HttpClientFactory = new ProbeHttpClientFactory(s3.VerifyTls, repo.CaFile, timeout),
        };
        return s3.KeyType == "auto"
            ? new AmazonS3Client(config)
            : new AmazonS3Client(new BasicAWSCredentials(
                Secret.Read($"{at}:S3:Key", s3.Key, s3.KeyFile), Secret.Read($"{at}:S3:KeySecret", s3.KeySecret, s3.KeySecretFile)), config);
    }

    /// <summary>AWSSDK builds its HttpClient through this factory: the one place to apply the TLS settings.</summary>
    private sealed class ProbeHttpClientFactory(bool verifyTls, string? caFile, TimeSpan timeout) : HttpClientFactory
    {
        public override HttpClient CreateHttpClient(IClientConfig clientConfig) =>
            new(TlsTrust.CreateHandler(verifyTls, caFile, timeout)) { Timeout = timeout };

        public override bool UseSDKHttpClientCaching(IClientConfig clientConfig) => false;

        public override bool DisposeHttpClientsAfterUse(IClientConfig clientConfig) => true;
    }
}
