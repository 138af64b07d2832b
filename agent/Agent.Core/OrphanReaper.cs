using Backrest.Agent.Core.Configuration;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core;

/// <summary>
/// A backup or restore started by an agent that was then killed (SIGKILL, OOM) can outlive it as an
/// orphan: a backup keeps the stanza's backup lock, so every new backup would fail; a restore (2.45 has
/// no restore lock) could race a new restore into the same directory. At start-up, before serving, the
/// agent stops every such process that runs with its own config file; pgBackRest cleans up on SIGTERM
/// and the next backup resumes or restarts the interrupted one. WAL pushes are left alone: they finish
/// on their own and PostgreSQL retries whatever did not. A TLS server (Cluster/TlsServerHost) left behind would hold
/// its port, so the new one could not listen: it is stopped too.
/// </summary>
public static partial class OrphanReaper
{
    private static readonly string[] ExclusiveCommands = ["backup", "restore", "expire", "stanza-create", "stanza-upgrade", "server"];

    public static async Task ReapAsync(AgentOptions options, ILogger logger, CancellationToken cancellationToken)
    {
        var configArgument = $"--config={options.PgBackRest.ConfigPath}";
        var self = Environment.ProcessId;
        foreach (var pid in Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Select(n => int.TryParse(n, out var p) ? p : 0))
        {
            if (pid <= 1 || pid == self || ReadArguments(pid) is not { } argv)
            {
                continue;
            }

            if (argv.Length == 0 || !Path.GetFileName(argv[0]).StartsWith("pgbackrest", StringComparison.Ordinal) ||
                !argv.Contains(configArgument) || argv.FirstOrDefault(IsExclusiveCommand) is not { } command)
            {
                continue;
            }

            Log.ReapingOrphan(logger, pid, command);
            _ = PgBackRest.ProcessRunner.Kill(pid, 15);
            for (var i = 0; i < 300 && IsAlive(pid); i++)
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }

            if (IsAlive(pid))
            {
                _ = PgBackRest.ProcessRunner.Kill(pid, 9);
            }
        }
    }

    /// <summary>
    /// "backup", and its helper processes "backup:local" (one per process-max): with only the parent stopped, a helper
    /// left behind kept the stanza's backup lock held (2.45, agent killed alone), and every new backup failed with 50.
    /// </summary>
    private static bool IsExclusiveCommand(string argument) => ExclusiveCommands.Contains(argument.Split(':')[0]);

    private static string[]? ReadArguments(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null; // gone, or not ours to read
        }
    }

    /// <summary>Alive and not a zombie (an unreaped orphan stays in /proc as state Z).</summary>
    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].FirstOrDefault();
            return state is not ('Z' or 'X');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.ReapingOrphan, EventName = nameof(LogEvents.ReapingOrphan), Level = LogLevel.Warning,
            Message = "Stopping pgBackRest process {Pid} ({Command}) left running by a previous agent; start the operation again if it is still needed")]
        public static partial void ReapingOrphan(ILogger logger, int pid, string command);
    }
}
