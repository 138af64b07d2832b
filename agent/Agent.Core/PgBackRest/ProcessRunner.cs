using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Backrest.Agent.Core.PgBackRest;

/// <summary>An external program to run: no shell, arguments as a list, secrets only in the environment.</summary>
public sealed record ProcessSpec(string Executable, IReadOnlyList<string> Arguments)
{
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Called with each stdout line as it arrives (progress parsing, the backup label, the restored set).</summary>
    public Action<string>? OnStdoutLine { get; init; }

    /// <summary>
    /// Keep all of stdout in <see cref="ProcessResult.Stdout"/>: only for output that must be read whole and is bounded,
    /// such as <c>info --output=json</c> (one JSON document). Otherwise only the last <see cref="OutputTail.Limit"/>
    /// characters are kept: a restore at detail level prints a line per file.
    /// </summary>
    public bool KeepWholeStdout { get; init; }

    /// <summary>How long to wait after SIGTERM before the process is killed.</summary>
    public TimeSpan TerminateGrace { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// How a process ended. <paramref name="Stdout"/> is whole only with <see cref="ProcessSpec.KeepWholeStdout"/>, else its
/// tail; <paramref name="Stderr"/> is always its tail (errors and warnings come last, and pgBackRest's are short).
/// </summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr, TimeSpan Duration);

public interface IProcessRunner
{
    /// <summary>
    /// Runs the process to completion. On cancellation it sends SIGTERM (pgBackRest then exits 63 and
    /// cleans up), waits <see cref="ProcessSpec.TerminateGrace"/>, then kills it, and throws.
    /// </summary>
    Task<ProcessResult> RunAsync(ProcessSpec spec, CancellationToken cancellationToken);
}

internal sealed partial class ProcessRunner : IProcessRunner
{
    private const int SigTerm = 15;

    /// <summary>
    /// What a child may see of the agent's environment: the search path, locale and time zone, home, and the AWS
    /// variables that point S3 key-type web-id/pod-id at their token files (names of files, not secrets).
    /// </summary>
    internal static readonly string[] InheritedVariables =
    [
        "PATH", "LANG", "LC_ALL", "TZ", "HOME", "TMPDIR",
        "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ];

    public async Task<ProcessResult> RunAsync(ProcessSpec spec, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(spec.Executable)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var argument in spec.Arguments)
        {
            info.ArgumentList.Add(argument);
        }

        // Children get a minimal environment, never the agent's own: it holds repository secrets
        // (Agent__Repositories__N__S3__KeySecret), and pgBackRest reads PGBACKREST_* variables as options.
        info.Environment.Clear();
        foreach (var name in InheritedVariables)
        {
            if (System.Environment.GetEnvironmentVariable(name) is { } value)
            {
                info.Environment[name] = value;
            }
        }

        foreach (var (name, value) in spec.Environment)
        {
            info.Environment[name] = value;
        }

        using var process = new Process { StartInfo = info };
        var stdout = new OutputTail(spec.KeepWholeStdout ? int.MaxValue : OutputTail.Limit);
        var stderr = new OutputTail(OutputTail.Limit);
        // Both streams are drained as they come: a full pipe would block the child.
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            stdout.Add(e.Data);
            spec.OnStdoutLine?.Invoke(e.Data);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                stderr.Add(e.Data);
            }
        };

        var clock = Stopwatch.StartNew();
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new AgentException(AgentErrorKind.FailedPrecondition,
                $"Cannot start '{spec.Executable}': {ex.Message}.", "Install pgBackRest or set Agent:PgBackRest:Executable.", inner: ex);
        }

        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await TerminateAsync(process, spec.TerminateGrace).ConfigureAwait(false);
            throw;
        }

        // WaitForExitAsync returns after the streams reached EOF, so the buffers are complete.
        return new ProcessResult(process.ExitCode, stdout.ToString(), stderr.ToString(), clock.Elapsed);
    }

    private static async Task TerminateAsync(Process process, TimeSpan grace)
    {
        try
        {
            if (process.HasExited)
            {
                return;
            }

            _ = Kill(process.Id, SigTerm);
            using var graceCts = new CancellationTokenSource(grace);
            try
            {
                await process.WaitForExitAsync(graceCts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    internal static partial int Kill(int pid, int signal);
}
