using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Backrest.Agent.Core.PgBackRest;

/// <summary>An external program to run: no shell, arguments as a list, secrets only in the environment.</summary>
public sealed record ProcessSpec(string Executable, IReadOnlyList<string> Arguments)
{
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Called with each stdout line as it arrives (progress parsing, the backup label, the restored set).</summary>
    public Action<string>? OnStdoutLine { get; init; }

    /// <summary>
    /// Keep all of stdout, as its bytes (<see cref="ProcessResult.StdoutUtf8"/>): only for output that must be read whole
    /// and is bounded, such as <c>info --output=json</c> (one JSON document, on one line). It is read raw, never split
    /// into lines, so no <see cref="OnStdoutLine"/>. Otherwise only the last <see cref="OutputTail.Limit"/> characters
    /// are kept: a restore at detail level prints a line per file.
    /// </summary>
    public bool KeepWholeStdout { get; init; }

    /// <summary>How long to wait after SIGTERM before the process is killed.</summary>
    public TimeSpan TerminateGrace { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// How a process ended. <paramref name="Stderr"/> is always its tail (errors and warnings come last, and pgBackRest's
/// are short).
/// </summary>
public sealed record ProcessResult(int ExitCode, string Stderr, TimeSpan Duration)
{
    /// <summary>All of stdout's bytes with <see cref="ProcessSpec.KeepWholeStdout"/>, else empty.</summary>
    public ReadOnlyMemory<byte> StdoutUtf8 { get; init; }

    /// <summary>
    /// Stdout as text: whole with <see cref="ProcessSpec.KeepWholeStdout"/> (decoded from <see cref="StdoutUtf8"/> when
    /// first read: a JSON parser reads the bytes and never needs the string), else its tail.
    /// </summary>
    public string Stdout
    {
        get => field ??= Encoding.UTF8.GetString(StdoutUtf8.Span);
        init;
    }
}

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

        if (spec.KeepWholeStdout && spec.OnStdoutLine is not null)
        {
            throw new ArgumentException("KeepWholeStdout reads stdout raw: it has no lines to hand to OnStdoutLine.", nameof(spec));
        }

        using var process = new Process { StartInfo = info };
        var stdout = new OutputTail(OutputTail.Limit);
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
        // Whole output is read as bytes: line reading would hold an 18 MB info line (1,000 backups) as a growing
        // StringBuilder, the line, a copy and its UTF-8 transcoding at once; these bytes are all a parser needs.
        var whole = spec.KeepWholeStdout ? ReadAllAsync(process.StandardOutput.BaseStream) : null;
        if (whole is null)
        {
            process.BeginOutputReadLine();
        }

        process.BeginErrorReadLine();

        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            await TerminateAsync(process, spec.TerminateGrace).ConfigureAwait(false);
            if (whole is not null)
            {
                // The process is gone: the read is at EOF or fails with the pipe; either way it is over before disposal.
                await whole.ContinueWith(_ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default)
                    .ConfigureAwait(false);
            }

            throw;
        }

        // WaitForExitAsync returns after the redirected streams it reads reached EOF, so the tails are complete; the raw
        // read ends at the same EOF.
        return whole is null
            ? new ProcessResult(process.ExitCode, stderr.ToString(), clock.Elapsed) { Stdout = stdout.ToString() }
            : new ProcessResult(process.ExitCode, stderr.ToString(), clock.Elapsed) { StdoutUtf8 = await whole.ConfigureAwait(false) };
    }

    /// <summary>The stream to its end. Not cancellable: it ends when the process exits or is killed (EOF).</summary>
    private static async Task<ReadOnlyMemory<byte>> ReadAllAsync(Stream stream)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer).ConfigureAwait(false);
        return new ReadOnlyMemory<byte>(buffer.GetBuffer(), 0, (int)buffer.Length);
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
