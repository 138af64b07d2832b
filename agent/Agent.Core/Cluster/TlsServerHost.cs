using System.Globalization;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.PgBackRest;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Backrest.Agent.Core.Cluster;

/// <summary>
/// Runs <c>pgbackrest server</c> (pgBackRest's TLS server, mutual TLS) while the agent runs, when
/// Agent:Cluster:TlsServer:Port is set, and starts it again if it exits. The backup source's agent on a standby reaches
/// this pod's PostgreSQL through it (backup-standby: the primary starts and stops the backup and gives a few files;
/// the standby gives the rest). Every pod runs one, since any may become the primary. The server forks a child per
/// connection; the children read log and lock paths from the environment given here (not from the server's --config).
/// </summary>
public sealed partial class TlsServerHost(AgentOptions options, IProcessRunner runner, PgBackRestConfigFile config, ILogger<TlsServerHost> logger)
    : BackgroundService
{
    private static readonly TimeSpan RestartDelay = TimeSpan.FromSeconds(5);

    internal IReadOnlyList<string> Arguments(string configPath)
    {
        var server = options.Cluster.TlsServer;
        return
        [
            $"--config={configPath}",
            "--log-level-console=info",
            "--log-level-stderr=warn",
            $"--tls-server-address={server.Address}",
            $"--tls-server-port={server.Port!.Value.ToString(CultureInfo.InvariantCulture)}",
            $"--tls-server-cert-file={server.CertificateFile}",
            $"--tls-server-key-file={server.KeyFile}",
            $"--tls-server-ca-file={server.CaFile}",
            $"--tls-server-auth={string.Join(",", server.ClientNames)}={options.Stanza}",
            "server",
        ];
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Cluster.TlsServer.Port is null)
        {
            return;
        }

        var pgbr = options.PgBackRest;
        while (!stoppingToken.IsCancellationRequested)
        {
            var spec = new ProcessSpec(pgbr.Executable, Arguments(config.EnsureCurrent()))
            {
                Environment = new Dictionary<string, string>
                {
                    ["PGBACKREST_LOG_PATH"] = pgbr.LogPath,
                    ["PGBACKREST_LOCK_PATH"] = pgbr.LockPath,
                },
                TerminateGrace = TimeSpan.FromSeconds(5),
            };
            Log.ServerStarting(logger, options.Cluster.TlsServer.Address, options.Cluster.TlsServer.Port.Value);
            ProcessResult result;
            try
            {
                result = await runner.RunAsync(spec, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            if (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            Log.ServerExited(logger, result.ExitCode, PgBackRestErrors.ParseError(result.Stderr).Message ?? "no error message", RestartDelay.TotalSeconds);
            try
            {
                await Task.Delay(RestartDelay, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.TlsServerStarting, EventName = nameof(LogEvents.TlsServerStarting), Level = LogLevel.Information,
            Message = "Starting pgBackRest's TLS server on {Address}:{Port} (for backups from a standby)")]
        public static partial void ServerStarting(ILogger logger, string address, int port);

        [LoggerMessage(EventId = LogEvents.TlsServerExited, EventName = nameof(LogEvents.TlsServerExited), Level = LogLevel.Error,
            Message = "pgBackRest's TLS server exited with {ExitCode}: {Error}; starting it again in {Seconds} s (check Agent:Cluster:TlsServer's files and port)")]
        public static partial void ServerExited(ILogger logger, int exitCode, string error, double seconds);
    }
}
