using System.Net;
using Backrest.Agent.Core;
using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Server.Grpc;
using Backrest.Agent.Server.Health;
using Backrest.Agent.Server.Metrics;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Prometheus;

namespace Backrest.Agent.Server;

internal static partial class AgentServerExtensions
{
    public static WebApplicationBuilder AddAgentServer(this WebApplicationBuilder builder, AgentOptions options, AgentRuntime runtime)
    {
        builder.Services.AddAgentCore(options, runtime);
        // The registry waits for a running operation within Agent:Operations:ShutdownGraceSeconds; the host must let it.
        builder.Services.Configure<HostOptions>(host =>
            host.ShutdownTimeout = TimeSpan.FromSeconds(options.Operations.ShutdownGraceSeconds + 5));
        builder.Services.AddGrpc(grpc =>
        {
            grpc.Interceptors.Add<ErrorInterceptor>();
            grpc.EnableDetailedErrors = builder.Environment.IsDevelopment();
        });
        // A malformed request body is INVALID_ARGUMENT, not UNKNOWN with a stack trace (parsing precedes interceptors).
        builder.Services.AddStrictRequestParsing<BackupAgentService>(V1.BackupAgent.Descriptor, binder => V1.BackupAgent.BindService(binder, null));
        builder.Services.AddStrictRequestParsing<WalArchiveService>(V1.WalArchive.Descriptor, binder => V1.WalArchive.BindService(binder, null));
        builder.Services.AddAgentHealth();
        builder.Services.AddHostedService<StartupTasks>();
        builder.Services.AddAgentMetrics();
        builder.Services.AddSingleton<Security.TlsFiles>();
        builder.Services.AddSingleton<Security.AccessPolicy>();
        builder.Services.AddSingleton<Security.ArchiveSocketPeers>();

        var socket = options.Listen.ArchiveSocket;
        Directory.CreateDirectory(Path.GetDirectoryName(socket)!);
        if (File.Exists(socket))
        {
            File.Delete(socket); // left by a killed agent; Kestrel cannot bind over it
        }

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var tls = kestrel.ApplicationServices.GetRequiredService<Security.TlsFiles>();
            var peers = kestrel.ApplicationServices.GetRequiredService<Security.ArchiveSocketPeers>();
            kestrel.Listen(IPAddress.Parse(options.Listen.Address), options.Listen.Port, o =>
            {
                o.Protocols = HttpProtocols.Http2;
                UseTls(o, tls, clientCertificates: tls.ClientCertificatesRequired);
            });
            kestrel.ListenUnixSocket(socket, o =>
            {
                o.Protocols = HttpProtocols.Http2;
                o.Use(peers.Middleware);
            });
            kestrel.Listen(IPAddress.Parse(options.Listen.Address), options.Listen.MetricsPort, o =>
            {
                o.Protocols = HttpProtocols.Http1;
                if (options.Tls.Metrics)
                {
                    UseTls(o, tls, clientCertificates: false);
                }
            });
        });
        return builder;
    }

    /// <summary>TLS from files re-read on change: each new connection gets the current certificate.</summary>
    private static void UseTls(Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions listen, Security.TlsFiles tls, bool clientCertificates)
    {
        if (!tls.Enabled)
        {
            return;
        }

        listen.UseHttps(new Microsoft.AspNetCore.Server.Kestrel.Https.HttpsConnectionAdapterOptions
        {
            ServerCertificateSelector = (_, _) => tls.ServerCertificate,
            ClientCertificateMode = clientCertificates
                ? Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.RequireCertificate
                : Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.NoCertificate,
            ClientCertificateValidation = (certificate, _, _) => clientCertificates && tls.IsTrustedClient(certificate),
        });
    }

    public static WebApplication MapAgentEndpoints(this WebApplication app)
    {
        app.UseGrpcRequestMetrics();
        app.UseMiddleware<Security.AccessControlMiddleware>();
        app.MapGrpcService<BackupAgentService>();
        app.MapGrpcService<WalArchiveService>();
        var options = app.Services.GetRequiredService<AgentOptions>();
        app.MapAgentHealth(options.Listen.MetricsPort);
        app.MapAgentMetrics(options.Listen.MetricsPort);
        var peers = app.Services.GetRequiredService<Security.ArchiveSocketPeers>();
        app.Lifetime.ApplicationStarted.Register(() => File.SetUnixFileMode(options.Listen.ArchiveSocket, peers.SocketMode));
        return app;
    }
}

/// <summary>Start-up chores that need the container: stop orphans a killed agent left behind, and its drills' leftovers.</summary>
internal sealed partial class StartupTasks(AgentOptions options, AgentRuntime runtime, StartupGate gate, Core.Drills.DrillService drills,
    ILogger<StartupTasks> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var setting in runtime.Settings.All)
        {
            Log.Setting(logger, setting.Key, setting.Value, setting.Source.ToString().ToLowerInvariant());
        }

        foreach (var warning in runtime.Settings.Warnings)
        {
            Log.SettingWarning(logger, warning);
        }

        await OrphanReaper.ReapAsync(options, logger, cancellationToken);
        // After the reaper: an interrupted drill's pgBackRest restore is stopped before its directory goes.
        await drills.RemoveLeftoversAsync(cancellationToken);
        gate.Complete();
        Log.Ready(logger, options.Stanza, options.Listen.Address, options.Listen.Port, options.Listen.ArchiveSocket);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static partial class Log
    {
        [LoggerMessage(EventId = LogEvents.AgentReady, EventName = nameof(LogEvents.AgentReady), Level = LogLevel.Information,
            Message = "backrest-agent for stanza {Stanza} listening on {Address}:{Port} and {Socket}")]
        public static partial void Ready(ILogger logger, string stanza, string address, int port, string socket);

        [LoggerMessage(EventId = LogEvents.EffectiveSetting, EventName = nameof(LogEvents.EffectiveSetting), Level = LogLevel.Information, Message = "pgBackRest {Key}={Value} ({Source})")]
        public static partial void Setting(ILogger logger, string key, string value, string source);

        [LoggerMessage(EventId = LogEvents.SettingWarning, EventName = nameof(LogEvents.SettingWarning), Level = LogLevel.Warning, Message = "{Warning}")]
        public static partial void SettingWarning(ILogger logger, string warning);
    }
}
