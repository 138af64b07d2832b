using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Server;
using Backrest.Agent.Server.Startup;

// backrest-agent              → the sidecar (gRPC on TCP for the control plane, on a Unix socket for PostgreSQL)
// backrest-agent restore …    → a one-shot restore for init containers and Jobs: no server, exit code 0/≠0
// backrest-agent config show  → the effective configuration, secrets redacted
var oneShot = args.Length > 0 && args[0] == "restore";
var configShow = args.Length > 1 && args[0] == "config" && args[1] == "show";
// The content root is the app's own directory, not the working directory: the host watches its content
// root for appsettings changes, and a working directory holding the data directory would cost CPU on every WAL write.
var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
{
    Args = oneShot || configShow ? args.Where(a => a.StartsWith("--Agent:", StringComparison.Ordinal)).ToArray() : args,
    ContentRootPath = AppContext.BaseDirectory,
});
var section = builder.Configuration.GetSection(AgentOptions.SectionName);
var (contractErrors, unknownKeys) = ConfigurationContract.Check(section);
foreach (var warning in unknownKeys)
{
    Console.Error.WriteLine($"backrest-agent: warning: {warning}");
}

if (contractErrors.Count > 0)
{
    Console.Error.WriteLine($"backrest-agent: {new ConfigurationException(contractErrors).Message}");
    return 2;
}

var options = ConfigurationContract.Bind(section);
if (configShow)
{
    Console.Out.WriteLine(ConfigurationContract.ShowRedacted(options));
    var errors = AgentOptionsValidator.Validate(options);
    foreach (var error in errors)
    {
        Console.Error.WriteLine($"backrest-agent: {error}");
    }

    return errors.Count == 0 ? 0 : 2;
}

AgentRuntime runtime;
try
{
    runtime = await AgentSetup.PrepareAsync(options, Microsoft.Extensions.DependencyInjection.AgentCoreServiceCollectionExtensions.CreateProcessRunner(), CancellationToken.None);
}
catch (ConfigurationException ex)
{
    Console.Error.WriteLine($"backrest-agent: {ex.Message}");
    return 2;
}

if (oneShot)
{
    return await OneShotRestore.RunAsync(args[1..], options, runtime);
}

// Certificates, keys and tokens are read once here, so a bad file stops start-up instead of failing each handshake.
var securityErrors = new Backrest.Agent.Server.Security.TlsFiles(options, TimeProvider.System).CheckLoadable()
    .Concat(new Backrest.Agent.Server.Security.AccessPolicy(options, TimeProvider.System).CheckLoadable()).ToList();
if (securityErrors.Count > 0)
{
    Console.Error.WriteLine($"backrest-agent: {new ConfigurationException(securityErrors).Message}");
    return 2;
}

if (ListenConflicts.FindInUse(options) is { } inUse)
{
    Console.Error.WriteLine($"backrest-agent: {inUse}");
    return 2;
}

builder.WebHost.UseKestrelHttpsConfiguration();
builder.AddAgentServer(options, runtime);
var app = builder.Build();
app.MapAgentEndpoints();
try
{
    await app.StartAsync();
}
catch (Exception ex) when (ListenConflicts.Describe(ex, options) is { } conflict)
{
    Console.Error.WriteLine($"backrest-agent: {conflict}");
    await app.DisposeAsync();
    return 2;
}

// Start-up leaves ~10 MiB of garbage behind (the gRPC services' method binding, configuration, Kestrel) that an idle
// agent would keep: it allocates too little to trigger a full collection for hours. One aggressive collection returns
// it to the system (tests/bench/footprint.sh: idle RSS).
GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
await app.WaitForShutdownAsync();
await app.DisposeAsync();
return 0;
