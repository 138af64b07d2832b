using System.Reflection;

namespace Backrest.Agent.IntegrationTests.Harness;

/// <summary>Where the binaries under test are: built by the same configuration as this test assembly.</summary>
public static class HarnessPaths
{
    public const string PostgresBin = "/usr/lib/postgresql/15/bin";
    public const string PgBackRest = "pgbackrest";
    public const string ArchiveClientVariable = "BACKREST_ARCHIVE_CLIENT";
    private const string TargetFramework = "net10.0";

    private static readonly Lazy<string> Root = new(FindRepositoryRoot);

    /// <summary>The checkout: the nearest directory above the test binaries that holds Agent.sln.</summary>
    public static string RepositoryRoot => Root.Value;

    /// <summary>Debug or Release, as this test assembly was built.</summary>
    public static string Configuration { get; } =
        typeof(HarnessPaths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration is { Length: > 0 } c
            ? c
            : "Debug";

    /// <summary>
    /// The agent as a program and its leading arguments: the NativeAOT build that tests/run.sh publishes
    /// (artifacts/agent, what the image ships), else the plain build run by dotnet (a quick `dotnet test`).
    /// </summary>
    public static (string Program, string[] Arguments) Agent => Published("agent", "backrest-agent", "Agent.Server");

    /// <summary>
    /// backrestctl as a program and its leading arguments: the NativeAOT build that tests/run.sh publishes
    /// (artifacts/backrestctl, what ships), else the plain build run by dotnet.
    /// </summary>
    public static (string Program, string[] Arguments) Cli => Published("backrestctl", "backrestctl", "Agent.Cli");

    /// <summary>The program and leading arguments that run <paramref name="program"/>, as run as the postgres user:
    /// <c>setpriv --reuid=postgres --regid=postgres --init-groups</c> then these.</summary>
    public static string[] AsPostgres((string Program, string[] Arguments) program) =>
        ["--reuid=postgres", "--regid=postgres", "--init-groups", program.Program, .. program.Arguments];

    /// <summary>
    /// The archive_command/restore_command client: $BACKREST_ARCHIVE_CLIENT, else the NativeAOT build that
    /// tests/run.sh publishes (artifacts/archive-client), else the plain build next to the other projects.
    /// It is named pgbackrest-archive (pgBackRest's backup refuses an archive_command without "pgbackrest",
    /// error 68); the older name backrest-archive is still found.
    /// </summary>
    public static string ArchiveClient
    {
        get
        {
            if (Environment.GetEnvironmentVariable(ArchiveClientVariable) is { Length: > 0 } configured)
            {
                return configured;
            }

            string[] names = ["pgbackrest-archive", "backrest-archive"];
            var published = Path.Combine(RepositoryRoot, "artifacts", "archive-client");
            var candidates = names.Select(n => Path.Combine(published, n))
                .Concat(names.Select(n => Output("Agent.ArchiveClient", n)))
                .ToList();
            return candidates.FirstOrDefault(File.Exists) ?? candidates[2];
        }
    }

    /// <summary>
    /// The node_modules of the storage emulators: tests/run.sh installs tests/emulators/package-lock.json into
    /// $BACKREST_EMULATORS_CACHE (default /var/cache/backrest-agent-tests)/emulators-&lt;first 16 hex digits of the
    /// lock file's SHA-256&gt;, so a changed lock file gets a fresh install.
    /// </summary>
    public static string EmulatorModules
    {
        get
        {
            var cache = Environment.GetEnvironmentVariable("BACKREST_EMULATORS_CACHE") is { Length: > 0 } configured
                ? configured
                : "/var/cache/backrest-agent-tests";
            var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(EmulatorScript("package-lock.json"))));
            return Path.Combine(cache, $"emulators-{hash[..16]}", "node_modules");
        }
    }

    /// <summary>A file of tests/emulators (our node scripts, the package files).</summary>
    public static string EmulatorScript(string name) => Path.Combine(RepositoryRoot, "tests", "emulators", name);

    public static string PostgresTool(string name) => Path.Combine(PostgresBin, name);

    /// <summary>artifacts/<paramref name="artifact"/>/<paramref name="program"/> (a NativeAOT publish) when present,
    /// else `dotnet` and the plain build's dll.</summary>
    private static (string Program, string[] Arguments) Published(string artifact, string program, string project)
    {
        var published = Path.Combine(RepositoryRoot, "artifacts", artifact, program);
        return File.Exists(published) ? (published, []) : ("dotnet", [Output(project, program + ".dll")]);
    }

    private static string Output(string project, string file) =>
        Path.Combine(RepositoryRoot, "agent", project, "bin", Configuration, TargetFramework, file);

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Agent.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Agent.sln above {AppContext.BaseDirectory}.");
    }
}
