using System.Diagnostics;
using System.Text;

namespace Backrest.Agent.IntegrationTests.Harness;

/// <summary>How to run one command.</summary>
public sealed record CommandOptions
{
    public static readonly CommandOptions Default = new();

    /// <summary>Added to (or, with a null value, removed from) the inherited environment.</summary>
    public IReadOnlyDictionary<string, string?> Environment { get; init; } = new Dictionary<string, string?>();

    /// <summary>Null: the caller's; commands run as postgres default to /tmp, which that user can always enter.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>Written to the command's stdin, which is then closed (it is closed at once when null).</summary>
    public string? StandardInput { get; init; }

    /// <summary>After this the whole process tree is killed and <see cref="TimeoutException"/> thrown.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>What a finished command did.</summary>
public sealed record CommandResult(
    IReadOnlyList<string> Command, int ExitCode, string StandardOutput, string StandardError, TimeSpan Elapsed)
{
    public bool Succeeded => ExitCode == 0;

    /// <summary>Returns this result, or throws <see cref="CommandFailedException"/> when the exit code is not 0.</summary>
    public CommandResult EnsureSuccess() => Succeeded ? this : throw new CommandFailedException(this);

    public override string ToString()
    {
        var text = new StringBuilder()
            .Append(OsCommand.Format(Command))
            .Append(" -> exit ").Append(ExitCode)
            .Append(" in ").Append(Elapsed.TotalSeconds.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)).Append(" s");
        AppendTail(text, "stdout", StandardOutput);
        AppendTail(text, "stderr", StandardError);
        return text.ToString();
    }

    private static void AppendTail(StringBuilder text, string name, string output)
    {
        const int MaxChars = 4000;
        if (output.Length == 0)
        {
            return;
        }

        text.AppendLine().Append("--- ").Append(name).AppendLine(output.Length > MaxChars ? " (tail)" : "")
            .Append(output.Length > MaxChars ? output[^MaxChars..] : output);
    }
}

public sealed class CommandFailedException(CommandResult result) : Exception(result.ToString())
{
    public CommandResult Result { get; } = result;
}

/// <summary>
/// Runs OS commands from an argv list (never through a shell), capturing stdout and stderr.
/// The tests run as root; PostgreSQL and pgBackRest refuse root, so they go through <see cref="RunAsPostgresAsync"/>.
/// </summary>
public static class OsCommand
{
    public const string PostgresUser = "postgres";

    // A daemon started by the command (a postmaster without -l, pgBackRest's async archiver) could keep our pipes
    // open after the command exits; don't wait for it forever.
    private static readonly TimeSpan OutputDrainTimeout = TimeSpan.FromSeconds(10);

    public static async Task<CommandResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        CommandOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= CommandOptions.Default;
        var startInfo = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = options.WorkingDirectory ?? "",
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in options.Environment)
        {
            if (value is null)
            {
                startInfo.Environment.Remove(name);
            }
            else
            {
                startInfo.Environment[name] = value;
            }
        }

        string[] command = [fileName, .. startInfo.ArgumentList];
        var stopwatch = Stopwatch.StartNew();
        using var process = Process.Start(startInfo)
            ?? throw new InvalidOperationException($"Could not start {Format(command)}.");
        var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            if (options.StandardInput is not null)
            {
                await process.StandardInput.WriteAsync(options.StandardInput);
            }

            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The command exited without reading its input; its exit code tells the rest.
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            KillTree(process);
            cancellationToken.ThrowIfCancellationRequested();
            throw new TimeoutException(
                $"{Format(command)} did not finish within {options.Timeout.TotalSeconds:0} s; its process tree was killed.");
        }

        try
        {
            await Task.WhenAll(stdout, stderr).WaitAsync(OutputDrainTimeout, CancellationToken.None);
        }
        catch (TimeoutException)
        {
            throw new InvalidOperationException(
                $"{Format(command)} exited with {process.ExitCode} but a process it started still holds its stdout/stderr.");
        }

        return new CommandResult(command, process.ExitCode, await stdout, await stderr, stopwatch.Elapsed);
    }

    /// <summary>Runs <c>runuser -u postgres -- fileName arguments...</c>.</summary>
    public static Task<CommandResult> RunAsPostgresAsync(
        string fileName,
        IEnumerable<string> arguments,
        CommandOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= CommandOptions.Default;
        if (options.WorkingDirectory is null)
        {
            options = options with { WorkingDirectory = "/tmp" };
        }

        return RunAsync("runuser", ["-u", PostgresUser, "--", fileName, .. arguments], options, cancellationToken);
    }

    /// <summary>A command line for messages, quoted like a shell would need it.</summary>
    public static string Format(IEnumerable<string> command) =>
        string.Join(' ', command.Select(static a =>
            a.Length > 0 && a.All(static c => char.IsAsciiLetterOrDigit(c) || "-_./=:,@%+".Contains(c)) ? a : $"'{a.Replace("'", "'\\''")}'"));

    private static void KillTree(Process process)
    {
        try
        {
            // runuser forks: its child, not runuser, is the command, so kill the whole tree.
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }
    }
}
