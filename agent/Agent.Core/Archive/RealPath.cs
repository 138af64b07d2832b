using System.Runtime.InteropServices;

namespace Backrest.Agent.Core.Archive;

/// <summary>
/// realpath(3): the archive client resolves PostgreSQL's relative %p against its working directory, which the
/// kernel reports with every symlink resolved, while the configured data directory may name a symlink. Paths
/// are compared resolved.
/// </summary>
internal static partial class RealPath
{
    /// <summary>The canonical absolute path, or null when it does not exist (or cannot be resolved).</summary>
    public static string? Of(string path)
    {
        var resolved = Resolve(path, 0);
        if (resolved == 0)
        {
            return null;
        }

        try
        {
            return Marshal.PtrToStringUTF8(resolved);
        }
        finally
        {
            Free(resolved);
        }
    }

    [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint Resolve(string path, nint resolved);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint pointer);
}
