using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Server;

// backrest-agent            → the sidecar (gRPC on TCP for the control plane, on a Unix socket for PostgreSQL)
// backrest-agent restore …  → a one-shot restore for init containers and Jobs: no server, exit code 0/≠0
var oneShot = args.Length > 0 && args[0] == "restore";
// The content root is the app's own directory, not the working directory: the host watches its content
// root for appsettings changes, and a working directory holding the data directory would cost CPU on every WAL write.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = oneShot ? args.Where(a => a.StartsWith("--Agent:", StringComparison.Ordinal)).ToArray() : args,
    ContentRootPath = AppContext.BaseDirectory,
});
var options = builder.Configuration.GetSection(AgentOptions.SectionName).Get<AgentOptions>() ?? new AgentOptions();

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

builder.AddAgentServer(options, runtime);
var app = builder.Build();
app.MapAgentEndpoints();
await app.RunAsync();
return 0;
