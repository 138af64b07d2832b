using System.Text.Json;
using Backrest.Agent.Core.Configuration;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core;

/// <summary>
/// A backup started by an agent that was then killed (SIGKILL, OOM) keeps running as an orphan and
/// holds the stanza's backup lock, so every new backup would fail with "unable to acquire lock".
/// At start-up the agent stops such orphans; pgBackRest cleans up on SIGTERM and the next backup
/// resumes or restarts the interrupted one.
/// </summary>
public static partial class OrphanReaper
{
    public static async Task ReapAsync(AgentOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        var lockDir = new DirectoryInfo(options.PgBackRest.LockPath);
        if (!lockDir.Exists)
        {
            return;
        }

        // <stanza>-backup.lock up to 2.52, <stanza>-backup-<repo>.lock from 2.53.
        foreach (var lockFile in lockDir.EnumerateFiles($"{options.Stanza}-backup*.lock"))
        {
            if (ReadPid(lockFile.FullName) is not { } pid || !IsPgBackRest(pid))
            {
                continue;
            }

            Log.ReapingOrphan(logger, pid, lockFile.Name);
            _ = PgBackRest.ProcessRunner.Kill(pid, 15);
            for (var i = 0; i < 300 && Directory.Exists($"/proc/{pid}"); i++)
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }

            if (Directory.Exists($"/proc/{pid}"))
            {
                _ = PgBackRest.ProcessRunner.Kill(pid, 9);
            }
        }
    }

    private static int? ReadPid(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            return document.RootElement.TryGetProperty("pid", out var pid) ? pid.GetInt32() : null;
        }
        catch (Exception ex) when (ex is IOException or JsonException or InvalidOperationException or UnauthorizedAccessException)
        {
            return null; // an empty or foreign lock file: nothing to reap
        }
    }

    private static bool IsPgBackRest(int pid)
    {
        try
        {
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            return cmdline.Contains("pgbackrest", StringComparison.Ordinal) && cmdline.Contains("backup", StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 10, EventName = "ReapingOrphanBackup", Level = LogLevel.Warning,
            Message = "Stopping pgBackRest process {Pid} left running by a previous agent (lock {LockFile}); the next backup will start cleanly")]
        public static partial void ReapingOrphan(ILogger logger, int pid, string lockFile);
    }
}
