using Xunit.Abstractions;

namespace Backrest.Agent.IntegrationTests.Harness.Emulators;

/// <summary>
/// One of each emulator, started together once for a test collection (~3 s instead of per test). Tests sharing them
/// stay apart by giving each repository a prefix of its own (<see cref="UniquePath"/>); a test that stops or breaks
/// an emulator starts its own instead.
/// </summary>
public sealed class StorageEmulators : IAsyncLifetime
{
    private int _paths;

    public S3Server S3 { get; } = new();

    public GcsEmulator Gcs { get; } = new();

    public Azurite Azure { get; } = new();

    public IEnumerable<StorageEmulator> All => [S3, Gcs, Azure];

    /// <summary>The emulator of a kind (s3, gcs, azure).</summary>
    public StorageEmulator For(string kind) => All.Single(e => e.Kind == kind);

    /// <summary>A repository prefix no other test of this run uses.</summary>
    public string UniquePath(string name) => $"/{name}-{Interlocked.Increment(ref _paths)}-{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>The emulators' log tails, for a failing test's output.</summary>
    public string LogTails() => string.Join('\n', All.Select(e => e.LogTail(20)));

    public Task InitializeAsync() => Task.WhenAll(All.Select(e => e.StartAsync()));

    public async Task DisposeAsync()
    {
        foreach (var emulator in All)
        {
            await emulator.DisposeAsync();
        }
    }
}

/// <summary>The tests that share one <see cref="StorageEmulators"/>.</summary>
[CollectionDefinition(Name)]
public sealed class StorageEmulatorsCollection : ICollectionFixture<StorageEmulators>
{
    public const string Name = "storage emulators";
}

internal static class EmulatorLogs
{
    /// <summary>Runs a test body; when it fails, the emulators' log tails go to the test's output before the failure.</summary>
    public static async Task OnFailureAsync(this ITestOutputHelper output, Func<string> logs, Func<Task> body)
    {
        try
        {
            await body();
        }
        catch
        {
            output.WriteLine(logs());
            throw;
        }
    }
}
