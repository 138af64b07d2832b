using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

namespace Backrest.Agent.IntegrationTests.Harness;

/// <summary>
/// A real Prometheus server (Debian's prometheus package, installed by tests/run.sh) on a free port on 127.0.0.1 with a
/// config of its own that scrapes the given targets every second, its data in a temp directory. It runs in a session of
/// its own (setsid); disposing stops it. Queries go through its HTTP API, as a dashboard's would.
/// </summary>
public sealed class PrometheusServer : IAsyncDisposable
{
    public const string Job = "backrest-agent";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly TestDirectory _directory;
    private readonly ProcessLog _log;
    private readonly Process _process;
    private readonly HttpClient _http;

    private PrometheusServer(TestDirectory directory, ProcessLog log, Process process, int port)
    {
        _directory = directory;
        _log = log;
        _process = process;
        Port = port;
        _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
    }

    public int Port { get; }

    /// <summary>
    /// Starts Prometheus scraping /metrics of each target (host:port) every second, evaluating the rule groups given (the
    /// text of a rules file) every second too, and waits until it is ready.
    /// </summary>
    public static async Task<PrometheusServer> StartAsync(IEnumerable<string> targets, string? rules = null, CancellationToken cancellationToken = default)
    {
        var directory = TestDirectory.Create();
        var port = FreePort.Next();
        var ruleFiles = rules is null ? "" : $"rule_files: ['{directory.WriteFile("rules.yml", rules)}']";
        var config = directory.WriteFile("prometheus.yml", $"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
              evaluation_interval: 1s
            {ruleFiles}
            scrape_configs:
              - job_name: {Job}
                static_configs:
                  - targets: [{string.Join(", ", targets.Select(t => $"'{t}'"))}]
            """);
        var log = new ProcessLog(directory.Combine("prometheus.log"));
        var startInfo = new ProcessStartInfo("setsid") { WorkingDirectory = directory.Path };
        foreach (var argument in (string[])
        [
            "prometheus", $"--config.file={config}", $"--storage.tsdb.path={directory.Combine("data")}",
            $"--web.listen-address=127.0.0.1:{port}", "--log.level=warn",
        ])
        {
            startInfo.ArgumentList.Add(argument);
        }

        var process = log.Start(startInfo, $"--- harness: starting Prometheus on 127.0.0.1:{port}");
        var server = new PrometheusServer(directory, log, process, port);
        LeakGuard.Register(server, server.Stop);
        try
        {
            await server.WaitUntilReadyAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>An instant query: each resulting series' labels and value.</summary>
    public async Task<IReadOnlyList<(IReadOnlyDictionary<string, string> Labels, double Value)>> QueryAsync(string promql, CancellationToken cancellationToken = default)
    {
        using var reply = await _http.GetFromJsonAsync<JsonDocument>($"/api/v1/query?query={Uri.EscapeDataString(promql)}", cancellationToken)
            ?? throw new InvalidOperationException("Prometheus returned no body.");
        var root = reply.RootElement;
        if (root.GetProperty("status").GetString() != "success")
        {
            throw new InvalidOperationException($"Prometheus refused '{promql}': {root}");
        }

        return root.GetProperty("data").GetProperty("result").EnumerateArray().Select(r => (
            (IReadOnlyDictionary<string, string>)r.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!),
            double.Parse(r.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture))).ToList();
    }

    /// <summary>Queries until the query returns a series whose value satisfies the condition; fails after the timeout.</summary>
    public async Task<double> WaitForValueAsync(string promql, Func<double, bool> condition, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        IReadOnlyList<(IReadOnlyDictionary<string, string> Labels, double Value)> last = [];
        while (DateTime.UtcNow < deadline)
        {
            last = await QueryAsync(promql, cancellationToken);
            if (last.FirstOrDefault(r => condition(r.Value)) is { Labels: not null } match)
            {
                return match.Value;
            }

            await Task.Delay(250, cancellationToken);
        }

        throw new TimeoutException($"'{promql}' gave [{string.Join(", ", last.Select(r => r.Value))}] and not the value awaited.\n{LogTail()}");
    }

    /// <summary>Each loaded rule's name (alert) and health (ok, err, unknown before its first evaluation), with its error.</summary>
    public async Task<IReadOnlyList<(string Name, string Health, string? Error)>> RulesAsync(CancellationToken cancellationToken = default)
    {
        using var reply = await _http.GetFromJsonAsync<JsonDocument>("/api/v1/rules", cancellationToken)
            ?? throw new InvalidOperationException("Prometheus returned no body.");
        return reply.RootElement.GetProperty("data").GetProperty("groups").EnumerateArray()
            .SelectMany(g => g.GetProperty("rules").EnumerateArray())
            .Select(r => (r.GetProperty("name").GetString()!, r.GetProperty("health").GetString()!,
                r.TryGetProperty("lastError", out var e) ? e.GetString() : null))
            .ToList();
    }

    /// <summary>Every metric name Prometheus holds from its targets.</summary>
    public async Task<IReadOnlySet<string>> MetricNamesAsync(CancellationToken cancellationToken = default)
    {
        using var reply = await _http.GetFromJsonAsync<JsonDocument>("/api/v1/label/__name__/values", cancellationToken)
            ?? throw new InvalidOperationException("Prometheus returned no body.");
        return reply.RootElement.GetProperty("data").EnumerateArray().Select(n => n.GetString()!).ToHashSet();
    }

    public string LogTail(int lines = 30) => $"--- Prometheus log {_log.Path} (tail)\n{_log.Tail(lines)}";

    public override string ToString() => $"Prometheus on 127.0.0.1:{Port}";

    private async Task WaitUntilReadyAsync(CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + StartTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"Prometheus exited with {_process.ExitCode} at start.\n{LogTail()}");
            }

            try
            {
                using var ready = await _http.GetAsync("/-/ready", cancellationToken);
                if (ready.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }

            await Task.Delay(100, cancellationToken);
        }

        throw new TimeoutException($"Prometheus was not ready within {StartTimeout.TotalSeconds:0} s.\n{LogTail()}");
    }

    private void Stop()
    {
        if (_process.HasExited)
        {
            return;
        }

        Libc.Signal(-_process.Id, Libc.SigTerm);
        if (!_process.WaitForExit(TimeSpan.FromSeconds(10)))
        {
            Libc.Signal(-_process.Id, Libc.SigKill);
            _process.WaitForExit(TimeSpan.FromSeconds(10));
        }
    }

    public ValueTask DisposeAsync()
    {
        Stop();
        _process.Dispose();
        _http.Dispose();
        _log.Dispose();
        LeakGuard.Unregister(this);
        _directory.Dispose();
        return ValueTask.CompletedTask;
    }
}
