using System.Diagnostics;

namespace Backrest.Agent.IntegrationTests.Harness;

/// <summary>
/// A server process's log file: stdout and stderr of each run appended, plus the harness's own "--- harness:" lines.
/// </summary>
public sealed class ProcessLog(string path) : IDisposable
{
    private readonly Lock _lock = new();
    private StreamWriter? _writer;

    public string Path { get; } = path;

    /// <summary>(Re)opens the file for appending and starts the process with both streams drained into it, stdin closed.</summary>
    public Process Start(ProcessStartInfo startInfo, string startLine)
    {
        startInfo.UseShellExecute = false;
        startInfo.RedirectStandardInput = true;
        startInfo.RedirectStandardOutput = true;
        startInfo.RedirectStandardError = true;
        lock (_lock)
        {
            _writer?.Dispose();
            _writer = new StreamWriter(new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite)) { AutoFlush = true };
        }

        Write(startLine);
        var process = new Process { StartInfo = startInfo };
        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        process.StandardInput.Close();
        return process;
    }

    public void Write(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lock)
        {
            _writer?.WriteLine(line);
        }
    }

    public string Tail(int lines) => TestDirectory.TailOf(Path, lines);

    public void Dispose()
    {
        lock (_lock)
        {
            _writer?.Dispose();
            _writer = null;
        }
    }
}
