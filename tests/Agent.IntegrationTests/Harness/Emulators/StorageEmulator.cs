using System.Diagnostics;
using System.Globalization;

namespace Backrest.Agent.IntegrationTests.Harness.Emulators;

/// <summary>
/// A storage emulator from npm (tests/emulators, installed by tests/run.sh) run by node on 127.0.0.1, on a free port,
/// over HTTPS with <see cref="TestCertificates"/>. It runs in a session and process group of its own (setsid execs, so
/// the process held here is node), its data and its log (stdout and stderr) in a temp directory of its own. Stopping
/// signals the whole group; it can be started again on the same port (a new, empty store where the data is in memory).
/// </summary>
public abstract class StorageEmulator : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private Process? _process;
    private readonly ProcessLog _log;
    private bool _disposed;

    protected StorageEmulator()
    {
        Directory = TestDirectory.Create();
        Port = FreePort.Next();
        LogFile = Directory.Combine("emulator.log");
        _log = new ProcessLog(LogFile);
        LeakGuard.Register(this, () => Stop(TimeSpan.FromSeconds(2)));
    }

    /// <summary>The repository type pgBackRest calls it: s3, gcs or azure.</summary>
    public abstract string Kind { get; }

    public TestDirectory Directory { get; }

    public int Port { get; }

    public string Url => $"https://127.0.0.1:{Port}";

    public string LogFile { get; }

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>
    /// The agent's settings (Agent__Repositories__&lt;index&gt;__...) for a repository in this emulator under
    /// <paramref name="path"/> (a prefix starting with '/': one per test keeps tests apart in a shared emulator).
    /// </summary>
    public abstract IReadOnlyDictionary<string, string?> RepositorySettings(int index, string path);

    /// <summary>
    /// The names of every object under <paramref name="prefix"/> (no leading '/'), read straight from the emulator's
    /// API without credentials (each one allows that): what the store holds, not what pgBackRest says it holds.
    /// </summary>
    public async Task<IReadOnlyList<string>> ListObjectsAsync(string prefix)
    {
        using var http = new HttpClient(TestCertificates.Instance.CreateTrustingHandler()) { Timeout = TimeSpan.FromSeconds(30) };
        var names = new List<string>();
        string? next = null;
        do
        {
            var page = await http.GetStringAsync(ListUrl(Uri.EscapeDataString(prefix), next is null ? null : Uri.EscapeDataString(next)));
            next = ReadListPage(page, names);
        }
        while (next is not null);

        return names;
    }

    /// <summary>Deletes the object <paramref name="name"/> (its full key, no leading '/') straight in the store, behind pgBackRest's back.</summary>
    public abstract Task DeleteObjectAsync(string name);

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (IsRunning)
        {
            throw new InvalidOperationException($"{this} is already running.");
        }

        var modules = HarnessPaths.EmulatorModules;
        if (!System.IO.Directory.Exists(modules))
        {
            throw new DirectoryNotFoundException(
                $"The storage emulators are not installed in {modules}: run tests/run.sh once (it installs tests/emulators with npm ci).");
        }

        var startInfo = new ProcessStartInfo("setsid") { WorkingDirectory = Directory.Path };
        foreach (var argument in (string[])["node", .. NodeArguments(modules, TestCertificates.Instance)])
        {
            startInfo.ArgumentList.Add(argument);
        }

        startInfo.Environment["NODE_PATH"] = modules;
        foreach (var (key, value) in Environment)
        {
            startInfo.Environment[key] = value;
        }

        _process?.Dispose();
        var process = _log.Start(startInfo, $"--- harness: starting {this}: {string.Join(' ', startInfo.ArgumentList)}");
        _process = process;
        try
        {
            await WaitUntilAnsweringAsync(process, cancellationToken);
            await AfterStartAsync(cancellationToken);
        }
        catch
        {
            Stop(TimeSpan.FromSeconds(2));
            throw;
        }
    }

    /// <summary>SIGTERM to the emulator's process group, SIGKILL after <paramref name="grace"/> (default 5 s).</summary>
    public void Stop(TimeSpan? grace = null)
    {
        if (_process is not { } process || process.HasExited)
        {
            return;
        }

        _log.Write($"--- harness: stopping {this}");
        Libc.Signal(-process.Id, Libc.SigTerm);
        if (!process.WaitForExit(grace ?? TimeSpan.FromSeconds(5)))
        {
            Libc.Signal(-process.Id, Libc.SigKill);
            process.WaitForExit(TimeSpan.FromSeconds(10));
        }

        // Anything the emulator started in its group goes too.
        Libc.Signal(-process.Id, Libc.SigKill);
    }

    public string LogTail(int lines = 40) => $"--- {this} log {LogFile} (tail)\n{TestDirectory.TailOf(LogFile, lines)}";

    public ValueTask DisposeAsync()
    {
        if (!_disposed)
        {
            _disposed = true;
            Stop(TimeSpan.FromSeconds(2));
            _process?.Dispose();
            _log.Dispose();

            LeakGuard.Unregister(this);
            Directory.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    public override string ToString() =>
        $"{GetType().Name} {Url} (pid {_process?.Id.ToString(CultureInfo.InvariantCulture) ?? "-"})";

    /// <summary>A DELETE without credentials, for the emulators that allow one (s3rver, the GCS emulator).</summary>
    protected async Task DeleteAnonymouslyAsync(string url)
    {
        using var http = new HttpClient(TestCertificates.Instance.CreateTrustingHandler()) { Timeout = TimeSpan.FromSeconds(30) };
        using var response = await http.DeleteAsync(url);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"DELETE {url} answered HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    /// <summary>The URL of one page of an anonymous listing (prefix and page token already escaped).</summary>
    protected abstract string ListUrl(string prefix, string? pageToken);

    /// <summary>Adds a page's object names to <paramref name="names"/>; returns the next page's token, null after the last.</summary>
    protected abstract string? ReadListPage(string page, List<string> names);

    /// <summary>The node script and its arguments.</summary>
    protected abstract IEnumerable<string> NodeArguments(string modules, TestCertificates certificates);

    protected virtual IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>();

    /// <summary>What must exist before a test can use it (Azure: the container).</summary>
    protected virtual Task AfterStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Any HTTPS answer, whatever its status, proves the emulator listens and TLS works.</summary>
    private async Task WaitUntilAnsweringAsync(Process process, CancellationToken cancellationToken)
    {
        using var http = new HttpClient(TestCertificates.Instance.CreateTrustingHandler()) { Timeout = TimeSpan.FromSeconds(5) };
        var clock = Stopwatch.StartNew();
        Exception? last = null;
        while (clock.Elapsed < StartTimeout)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{this} exited with code {process.ExitCode} before answering.\n{LogTail()}");
            }

            try
            {
                using var response = await http.GetAsync(Url + "/", cancellationToken);
                _log.Write($"--- harness: answered HTTP {(int)response.StatusCode} after {clock.Elapsed.TotalSeconds:0.00} s");
                return;
            }
            catch (HttpRequestException ex)
            {
                last = ex;
            }

            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
        }

        throw new TimeoutException($"{this} did not answer within {StartTimeout.TotalSeconds:0} s (last: {last?.Message}).\n{LogTail()}");
    }
}
