using System.Globalization;
using System.Text.Json;

namespace Backrest.Agent.IntegrationTests.Harness.Emulators;

/// <summary>
/// Google Cloud Storage: the Storage emulator inside firebase-tools, served by our tests/emulators/gcs.js (see there
/// why not the firebase CLI, and its two fixes for resumable uploads). Objects live in memory; every bucket exists
/// and every request is allowed, whatever its token. pgBackRest 2.45 ignores repo-storage-port for gcs: the port
/// goes into the endpoint.
/// </summary>
public sealed class GcsEmulator : StorageEmulator
{
    public const string Bucket = "pgbackrest";

    /// <summary>Sent verbatim as the Authorization header (key-type token); the emulator accepts any.</summary>
    public const string Token = "gcs-test-token";

    public override string Kind => "gcs";

    public override IReadOnlyDictionary<string, string?> RepositorySettings(int index, string path)
    {
        var at = $"Agent__Repositories__{index}__";
        return new Dictionary<string, string?>
        {
            [at + "Type"] = "gcs",
            [at + "Path"] = path,
            [at + "Gcs__Bucket"] = Bucket,
            [at + "Gcs__Endpoint"] = $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}",
            [at + "Gcs__KeyType"] = "token",
            [at + "Gcs__Key"] = Token,
            [at + "CaFile"] = TestCertificates.Instance.AuthorityFile,
        };
    }

    public override Task DeleteObjectAsync(string name) =>
        DeleteAnonymouslyAsync($"{Url}/storage/v1/b/{Bucket}/o/{Uri.EscapeDataString(name)}");

    protected override string ListUrl(string prefix, string? pageToken) =>
        $"{Url}/storage/v1/b/{Bucket}/o?prefix={prefix}" + (pageToken is null ? "" : $"&pageToken={pageToken}");

    protected override string? ReadListPage(string page, List<string> names)
    {
        using var json = JsonDocument.Parse(page);
        if (json.RootElement.TryGetProperty("items", out var items))
        {
            names.AddRange(items.EnumerateArray().Select(i => i.GetProperty("name").GetString()!));
        }

        return json.RootElement.TryGetProperty("nextPageToken", out var next) ? next.GetString() : null;
    }

    // Upload blobs go to $TMPDIR/firebase/storage/blobs: one per instance.
    protected override IReadOnlyDictionary<string, string> Environment =>
        new Dictionary<string, string> { ["TMPDIR"] = Directory.CreateSubdirectory("tmp") };

    protected override IEnumerable<string> NodeArguments(string modules, TestCertificates certificates) =>
    [
        HarnessPaths.EmulatorScript("gcs.js"),
        "127.0.0.1",
        Port.ToString(CultureInfo.InvariantCulture),
        certificates.ServerCertificateFile,
        certificates.ServerKeyFile,
    ];
}
