using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text;

namespace Backrest.Agent.IntegrationTests.Harness;

/// <summary>The few libc calls .NET has no API for: mkdtemp, chown, getpwnam and kill with a chosen signal.</summary>
internal static class Libc
{
    public const int SigTerm = 15;

    public const int SigKill = 9;

    /// <summary>Creates a new directory (mode 0700) from a template ending in XXXXXX; atomic, like mktemp -d.</summary>
    public static string MakeTempDirectory(string template)
    {
        var buffer = Encoding.UTF8.GetBytes(template + "\0");
        if (mkdtemp(buffer) == IntPtr.Zero)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), $"mkdtemp({template}) failed");
        }

        return Encoding.UTF8.GetString(buffer, 0, buffer.Length - 1);
    }

    public static void Chown(string path, uint uid, uint gid)
    {
        if (chown(path, uid, gid) != 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), $"chown({path}) failed");
        }
    }

    /// <summary>The uid and gid of an OS user (glibc x86-64/arm64 struct passwd: two pointers, then uid, gid).</summary>
    public static (uint Uid, uint Gid) GetUser(string name)
    {
        var entry = getpwnam(name);
        if (entry == IntPtr.Zero)
        {
            throw new InvalidOperationException($"OS user '{name}' does not exist (is postgresql-15 installed?).");
        }

        var offset = 2 * IntPtr.Size;
        return ((uint)Marshal.ReadInt32(entry, offset), (uint)Marshal.ReadInt32(entry, offset + 4));
    }

    /// <summary>Sends a signal (to a process group when <paramref name="pid"/> is negative); false when it is already gone.</summary>
    public static bool Signal(int pid, int signal) => kill(pid, signal) == 0;

    [DllImport("libc", SetLastError = true)]
    private static extern IntPtr mkdtemp(byte[] template);

    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern int chown(string path, uint owner, uint group);

    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi, BestFitMapping = false, ThrowOnUnmappableChar = true)]
    private static extern IntPtr getpwnam(string name);

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
