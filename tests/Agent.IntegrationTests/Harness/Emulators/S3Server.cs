using System.Globalization;
using System.Xml.Linq;

namespace Backrest.Agent.IntegrationTests.Harness.Emulators;

/// <summary>
/// S3: s3rver 3.7.1 with the bucket <see cref="Bucket"/> created at start; it checks signatures against its fixed
/// credentials (<see cref="AccessKey"/>/<see cref="SecretKey"/>).
/// Why s3rver 3.7.1 and not the fork @20minutes/s3rver 5.0.0 (tried here): the fork fixes neither defect of 3.7.1 —
/// it still encrypts list continuation tokens with DES (a list of more than 1000 keys is HTTP 500 unless node runs
/// with --openssl-legacy-provider) and still drops a "directory" from CommonPrefixes when no object sits directly
/// in it (so pgBackRest's expire removes an expired backup's manifest but never its files; rc 0) — and it needs
/// node >= 24 and ships no command (its package.json names a bin/ it does not contain).
/// </summary>
public sealed class S3Server : StorageEmulator
{
    public const string Bucket = "pgbackrest";
    public const string AccessKey = "S3RVER";
    public const string SecretKey = "S3RVER";

    public override string Kind => "s3";

    public override IReadOnlyDictionary<string, string?> RepositorySettings(int index, string path)
    {
        var at = $"Agent__Repositories__{index}__";
        return new Dictionary<string, string?>
        {
            [at + "Type"] = "s3",
            [at + "Path"] = path,
            [at + "S3__Bucket"] = Bucket,
            [at + "S3__Endpoint"] = "127.0.0.1",
            [at + "S3__Port"] = Port.ToString(CultureInfo.InvariantCulture),
            [at + "S3__Region"] = "us-east-1",
            [at + "S3__UriStyle"] = "path",
            [at + "S3__Key"] = AccessKey,
            [at + "S3__KeySecret"] = SecretKey,
            [at + "CaFile"] = TestCertificates.Instance.AuthorityFile,
        };
    }

    public override Task DeleteObjectAsync(string name) => DeleteAnonymouslyAsync(ObjectUrl(name));

    /// <summary>Stores each of <paramref name="names"/> (full keys, no leading '/') holding <paramref name="content"/>, without credentials.</summary>
    public async Task PutObjectsAsync(IEnumerable<string> names, byte[] content)
    {
        using var http = new HttpClient(TestCertificates.Instance.CreateTrustingHandler()) { Timeout = TimeSpan.FromSeconds(30) };
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (name, cancellationToken) =>
        {
            using var response = await http.PutAsync(ObjectUrl(name), new ByteArrayContent(content), cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"PUT {name} answered HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(cancellationToken)}");
            }
        });
    }

    protected override string ListUrl(string prefix, string? pageToken) =>
        $"{Url}/{Bucket}?list-type=2&prefix={prefix}" + (pageToken is null ? "" : $"&continuation-token={pageToken}");

    protected override string? ReadListPage(string page, List<string> names)
    {
        var root = XDocument.Parse(page).Root!;
        names.AddRange(root.Elements(root.Name.Namespace + "Contents").Select(c => c.Element(root.Name.Namespace + "Key")!.Value));
        return root.Element(root.Name.Namespace + "NextContinuationToken")?.Value;
    }

    private string ObjectUrl(string name) => $"{Url}/{Bucket}/{string.Join('/', name.Split('/').Select(Uri.EscapeDataString))}";

    protected override IEnumerable<string> NodeArguments(string modules, TestCertificates certificates) =>
    [
        "--openssl-legacy-provider",
        Path.Combine(modules, "s3rver", "bin", "s3rver.js"),
        "--directory", Directory.CreateSubdirectory("data"),
        "--address", "127.0.0.1",
        "--port", Port.ToString(CultureInfo.InvariantCulture),
        "--cert", certificates.ServerCertificateFile,
        "--key", certificates.ServerKeyFile,
        "--no-vhost-buckets",
        "--configure-bucket", Bucket,
    ];
}
