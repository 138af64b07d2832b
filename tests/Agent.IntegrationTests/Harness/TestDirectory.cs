namespace Backrest.Agent.IntegrationTests.Harness;

/// <summary>
/// A private temp directory, /tmp/bra-XXXXXX (short, so Unix socket paths inside it stay far below the
/// 107-byte limit), owned by postgres with mode 0700. Deleted on dispose unless KEEP_TEST_DIRS=1.
/// </summary>
public sealed class TestDirectory : IDisposable
{
    private static readonly Lazy<(uint Uid, uint Gid)> Postgres = new(() => Libc.GetUser(OsCommand.PostgresUser));

    private TestDirectory(string path) => Path = path;

    public string Path { get; }

    public static bool KeepDirectories => Environment.GetEnvironmentVariable("KEEP_TEST_DIRS") == "1";

    public static TestDirectory Create()
    {
        var path = Libc.MakeTempDirectory("/tmp/bra-XXXXXX");
        ChownToPostgres(path);
        return new TestDirectory(path);
    }

    /// <summary>Gives a file or directory the root test process created to the postgres user.</summary>
    public static void ChownToPostgres(string path) => Libc.Chown(path, Postgres.Value.Uid, Postgres.Value.Gid);

    public string Combine(string relativePath) => System.IO.Path.Combine(Path, relativePath);

    /// <summary>Creates (if missing) a directory owned by postgres, mode 0700, and its missing parents.</summary>
    public string CreateSubdirectory(string relativePath)
    {
        var full = Combine(relativePath);
        var missing = new Stack<string>();
        for (var dir = full; !Directory.Exists(dir); dir = System.IO.Path.GetDirectoryName(dir)!)
        {
            missing.Push(dir);
        }

        foreach (var dir in missing)
        {
            Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            ChownToPostgres(dir);
        }

        return full;
    }

    /// <summary>Writes a file owned by postgres (mode 0600), creating its directory.</summary>
    public string WriteFile(string relativePath, string contents)
    {
        var full = Combine(relativePath);
        CreateSubdirectory(System.IO.Path.GetDirectoryName(relativePath) ?? "");
        File.WriteAllText(full, contents);
        File.SetUnixFileMode(full, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        ChownToPostgres(full);
        return full;
    }

    /// <summary>The last lines of a text file in this directory (or at an absolute path); "" when it is missing.</summary>
    public string Tail(string relativePath, int lines = 50) => TailOf(Combine(relativePath), lines);

    public static string TailOf(string path, int lines)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var tail = new Queue<string>(lines);
            while (reader.ReadLine() is { } line)
            {
                if (tail.Count == lines)
                {
                    tail.Dequeue();
                }

                tail.Enqueue(line);
            }

            return string.Join('\n', tail);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return "";
        }
    }

    public void Dispose()
    {
        if (KeepDirectories)
        {
            Console.Error.WriteLine($"KEEP_TEST_DIRS=1: kept {Path}");
            return;
        }

        // Detached pgBackRest processes (async archive-push/get) may still write here after the agent died.
        KillProcessesUsing(Path);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                Directory.Delete(Path, recursive: true);
                return;
            }
            catch (DirectoryNotFoundException)
            {
                return;
            }
            catch (IOException) when (attempt < 10)
            {
                Thread.Sleep(200);
                KillProcessesUsing(Path);
            }
        }
    }

    /// <summary>SIGKILLs every process whose command line names <paramref name="directory"/>.</summary>
    private static void KillProcessesUsing(string directory)
    {
        foreach (var proc in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(System.IO.Path.GetFileName(proc), out var pid) || pid == Environment.ProcessId)
            {
                continue;
            }

            try
            {
                if (File.ReadAllText(System.IO.Path.Combine(proc, "cmdline")).Contains(directory + "/", StringComparison.Ordinal))
                {
                    Libc.Signal(pid, 9);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The process ended meanwhile.
            }
        }
    }

    public override string ToString() => Path;
}
