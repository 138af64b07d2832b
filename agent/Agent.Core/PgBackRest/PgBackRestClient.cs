using Backrest.Agent.Core.Configuration;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core.PgBackRest;

/// <summary>
/// The one place that runs pgBackRest: always with the rendered config, the stanza, errors on stderr
/// and the console either off or at detail level (progress). Never through a shell.
/// </summary>
public sealed partial class PgBackRestClient(IProcessRunner runner, AgentOptions options, PgBackRestConfigFile config, TimeProvider time, ILogger<PgBackRestClient> logger)
{
    public string Stanza => options.Stanza;

    /// <summary>Runs <c>pgbackrest [common options] command [arguments]</c> and returns whatever it did.</summary>
    public async Task<ProcessResult> RunAsync(
        string command,
        IEnumerable<string> arguments,
        CancellationToken cancellationToken,
        Action<string>? onConsoleLine = null,
        TimeSpan? terminateGrace = null,
        bool keepWholeStdout = false,
        int? onlyRepo = null)
    {
        // Rendered now: a rotated secret file reaches this very run. With onlyRepo, a file with that repository alone.
        var configPath = onlyRepo is { } repo ? config.EnsureCurrentFor(repo) : config.EnsureCurrent();
        var argv = new List<string>
        {
            $"--config={configPath}",
            $"--stanza={options.Stanza}",
            "--log-level-stderr=warn",
            // Detail level carries per-file progress; otherwise keep stdout clean (info JSON).
            onConsoleLine is null ? "--log-level-console=off" : "--log-level-console=detail",
            command,
        };
        argv.AddRange(arguments);

        var spec = new ProcessSpec(options.PgBackRest.Executable, argv)
        {
            OnStdoutLine = onConsoleLine,
            KeepWholeStdout = keepWholeStdout,
            TerminateGrace = terminateGrace ?? TimeSpan.FromSeconds(10),
        };
        var started = time.GetTimestamp();
        ProcessResult result;
        try
        {
            result = await runner.RunAsync(spec, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            CommandFinished?.Invoke(command, null, time.GetElapsedTime(started));
            throw;
        }

        Log.CommandFinished(logger, command, result.ExitCode, result.Duration.TotalMilliseconds);
        CommandFinished?.Invoke(command, result.ExitCode, result.Duration);
        return result;
    }

    /// <summary>Raised after every pgBackRest run with its command, exit code (null: stopped by cancellation) and duration.</summary>
    public event Action<string, int?, TimeSpan>? CommandFinished;

    /// <summary>Like <see cref="RunAsync"/>, but a non-zero exit throws with pgBackRest's message and hint.</summary>
    public async Task<ProcessResult> RunCheckedAsync(
        string command,
        IEnumerable<string> arguments,
        CancellationToken cancellationToken,
        Action<string>? onConsoleLine = null,
        bool keepWholeStdout = false)
    {
        var result = await RunAsync(command, arguments, cancellationToken, onConsoleLine, keepWholeStdout: keepWholeStdout).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw PgBackRestErrors.FromFailure(command, result.ExitCode, result.Stderr);
        }

        return result;
    }

    /// <summary>
    /// Raised after every successful info read, with the repository it was limited to (null: all of them) and when it
    /// finished: the status cache keeps whatever any caller read, so a backup's own final info refreshes the list at once.
    /// </summary>
    public event Action<StanzaInfo, int?, DateTimeOffset>? InfoRead;

    /// <summary>
    /// Reads this stanza's info, of one repository or (null) of all, which waits for the slowest. pgBackRest exits 0
    /// even when the stanza is broken: read the status code.
    /// </summary>
    public async Task<StanzaInfo> InfoAsync(CancellationToken cancellationToken, int? repo = null)
    {
        string[] arguments = repo is { } key ? ["--output=json", $"--repo={key}"] : ["--output=json"];
        // One JSON document: read whole (it grows with the backup count, not with the data). A stopped info has nothing to
        // clean up: a short grace.
        var result = await RunAsync("info", arguments, cancellationToken, terminateGrace: TimeSpan.FromSeconds(2), keepWholeStdout: true)
            .ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw PgBackRestErrors.FromFailure("info", result.ExitCode, result.Stderr);
        }

        var stanzas = InfoParser.Parse(result.StdoutUtf8);
        var info = stanzas.FirstOrDefault(s => s.Name == options.Stanza)
            ?? throw new AgentException(AgentErrorKind.Internal, $"pgbackrest info returned no entry for stanza '{options.Stanza}'.");
        InfoRead?.Invoke(info, repo, time.GetUtcNow());
        return info;
    }

    /// <summary>Reads the binary's version and compression types, once at start-up.</summary>
    public static async Task<PgBackRestCapabilities> ProbeAsync(IProcessRunner runner, string executable, CancellationToken cancellationToken)
    {
        var version = await runner.RunAsync(new ProcessSpec(executable, ["version"]), cancellationToken).ConfigureAwait(false);
        if (version.ExitCode != 0)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition,
                $"'{executable} version' failed with exit code {version.ExitCode}: {version.Stderr.Trim()}");
        }

        var help = await runner.RunAsync(new ProcessSpec(executable, ["help", "backup", "compress-type"]), cancellationToken)
            .ConfigureAwait(false);
        return PgBackRestCapabilities.Parse(version.Stdout, help.Stdout);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.PgBackRestCommandFinished, EventName = nameof(LogEvents.PgBackRestCommandFinished), Level = LogLevel.Debug,
            Message = "pgbackrest {Command} exited {ExitCode} after {ElapsedMs:F0} ms")]
        public static partial void CommandFinished(ILogger logger, string command, int exitCode, double elapsedMs);
    }
}
