using System.Diagnostics;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;

// Restore tests against the real agent, PostgreSQL 15 and pgBackRest. The classes live in this namespace so that
// `--filter FullyQualifiedName~RestoreTests` selects them all:
//   PitrTests      time / xid / lsn / name / immediate targets into new directories (one shared backup)
//   CopyTests      a copy on its own port beside the live cluster, archiving nothing (+ a skipped regression test:
//                  archive-get/archive-push async lock collision)
//   StandbyTests   type=standby into a new directory: a replica replaying newly archived WAL (archive-async off)
//   InPlaceTests   delta restore in place after PostgreSQL is stopped
//   RefusalTests   requests refused before pgBackRest runs; GetRecoveryWindow
//   OneShotTests   `backrest-agent restore ...` in the foreground
namespace Backrest.Agent.IntegrationTests.RestoreTests;

/// <summary>Steps every restore test takes: backups, WAL switches, running a restore, starting the restored copy.</summary>
internal static class RestoreSteps
{
    public static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(60);

    public static readonly TimeSpan RecoveryTimeout = TimeSpan.FromSeconds(45);

    /// <summary>A full backup watched until it succeeds; returns its label.</summary>
    public static async Task<string> TakeFullBackupAsync(TestEnvironment env)
    {
        var started = await env.Client.StartBackupAsync(new StartBackupRequest { Type = "full" });
        var done = await env.WaitAsync(started, OperationTimeout);
        AssertSucceeded(env, done);
        return done.Backup.Backup.Label;
    }

    /// <summary>Switches WAL (its own statement, so every earlier commit is in the switched segment) and waits until it is archived.</summary>
    public static async Task SwitchAndWaitArchivedAsync(PostgresCluster postgres)
    {
        var segment = await postgres.SwitchWalAsync();
        await postgres.WaitForArchivedAsync(segment, TimeSpan.FromSeconds(30));
    }

    public static Task InsertMarkerAsync(PostgresCluster postgres, string note) =>
        postgres.ExecuteAsync($"insert into marker (note) values ('{note}')");

    /// <summary>Every marker note in insertion order.</summary>
    public static async Task<string[]> MarkersAsync(PostgresCluster postgres)
    {
        var joined = await postgres.ScalarAsync<string>("select coalesce(string_agg(note, ',' order by id), '') from marker");
        return joined.Length == 0 ? [] : joined.Split(',');
    }

    /// <summary>StartRestore, then watch it to SUCCEEDED (the test fails with the operation's error otherwise).</summary>
    public static async Task<Operation> RestoreAsync(TestEnvironment env, StartRestoreRequest request)
    {
        var started = await env.Client.StartRestoreAsync(request);
        Assert.Equal(OperationKind.Restore, started.Kind);
        var done = await env.WaitAsync(started, OperationTimeout);
        AssertSucceeded(env, done);
        return done;
    }

    public static void AssertSucceeded(TestEnvironment env, Operation operation)
    {
        if (operation.State != OperationState.Succeeded)
        {
            Assert.Fail($"{operation.Description}: {operation.State} ({operation.Phase}): {operation.Error}\n--- agent log (tail)\n{env.Agent.LogTail()}");
        }
    }

    /// <summary>A restored copy in <paramref name="dataDirectory"/> started on <paramref name="port"/> (socket in the environment's directory).</summary>
    public static async Task<RestoredCopy> StartCopyAsync(TestEnvironment env, string dataDirectory, int port)
    {
        var copy = new RestoredCopy(PostgresCluster.FromDataDirectory(env.Directory, dataDirectory, port));
        try
        {
            await copy.Cluster.StartAsync();
            return copy;
        }
        catch
        {
            await copy.DisposeAsync();
            throw;
        }
    }

    /// <summary>Every file under <paramref name="directory"/> as "relative path, size, sha256", sorted.</summary>
    public static IReadOnlyList<string> Fingerprint(string directory, string relative)
    {
        var root = Path.Combine(directory, relative);
        if (File.Exists(root))
        {
            return [Describe(directory, root)];
        }

        return Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .Select(f => Describe(directory, f))
            .ToList();

        static string Describe(string directory, string file)
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(stream));
            return $"{Path.GetRelativePath(directory, file)} {stream.Length} {hash}";
        }
    }
}

/// <summary>A restored cluster started beside the live one; disposing stops it and deletes its data directory.</summary>
internal sealed class RestoredCopy(PostgresCluster cluster) : IAsyncDisposable
{
    public PostgresCluster Cluster { get; } = cluster;

    public async ValueTask DisposeAsync()
    {
        await Cluster.DisposeAsync();
        if (!TestDirectory.KeepDirectories)
        {
            try
            {
                Directory.Delete(Cluster.DataDirectory, recursive: true);
            }
            catch (DirectoryNotFoundException)
            {
            }
        }
    }
}

/// <summary>
/// One environment shared by a test class: a stanza, a marker table with the row 'pre-backup', and one full backup.
/// Subclasses add what happens after the backup. Restores go into fresh directories from <see cref="NewDataDirectory"/>.
/// </summary>
public abstract class RestoreFixture : IAsyncLifetime
{
    private int _directories;
    private TestEnvironment? _env;

    public TestEnvironment Env => _env ?? throw new InvalidOperationException("The fixture is not initialized.");

    public string BackupLabel { get; private set; } = "";

    /// <summary>How long the fixture took to set up (for the report).</summary>
    public TimeSpan SetupTime { get; private set; }

    public async Task InitializeAsync()
    {
        var clock = Stopwatch.StartNew();
        _env = await TestEnvironment.CreateAsync(EnvironmentOptions);
        try
        {
            await Env.Client.CreateStanzaAsync(new CreateStanzaRequest());
            await Env.Postgres.ExecuteAsync("create table marker (id bigserial primary key, note text not null)");
            await RestoreSteps.InsertMarkerAsync(Env.Postgres, "pre-backup");
            await BeforeBackupAsync();
            BackupLabel = await RestoreSteps.TakeFullBackupAsync(Env);
            await AfterBackupAsync();
        }
        catch
        {
            await _env.DisposeAsync();
            _env = null;
            throw;
        }

        SetupTime = clock.Elapsed;
    }

    public async Task DisposeAsync()
    {
        if (_env is not null)
        {
            await _env.DisposeAsync();
        }
    }

    /// <summary>A path inside the environment's directory that does not exist yet.</summary>
    public string NewDataDirectory(string name) => Env.Directory.Combine($"{name}-{Interlocked.Increment(ref _directories)}");

    protected virtual TestEnvironmentOptions EnvironmentOptions => new();

    protected virtual Task BeforeBackupAsync() => Task.CompletedTask;

    protected virtual Task AfterBackupAsync() => Task.CompletedTask;
}
