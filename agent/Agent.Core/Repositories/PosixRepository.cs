using System.Runtime.InteropServices;
using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Core.Repositories;

/// <summary>A directory on a mounted volume. Probe: the path (or, before stanza-create, its nearest parent) exists, the agent
/// (which runs pgBackRest as its own user) may write there, and the volume's free bytes.</summary>
public sealed partial class PosixRepository : RepositoryKind
{
    private const int WriteAndSearch = 2 | 1; // W_OK | X_OK

    public override string Type => "posix";

    protected override void ValidateKind(RepositoryOptions repo, string at, List<string> errors)
    {
        var path = repo.Path;
        if (string.IsNullOrWhiteSpace(path))
        {
            errors.Add($"{at}:Path is required.");
        }
        else if (!path.StartsWith('/'))
        {
            errors.Add($"{at}:Path '{path}' must be an absolute path.");
        }
        else if (path.IndexOfAny(['\n', '\r', '\0']) >= 0)
        {
            errors.Add($"{at}:Path must not contain line breaks.");
        }

        foreach (var (kind, section) in new (string, object?)[] { ("S3", repo.S3), ("Gcs", repo.Gcs), ("Azure", repo.Azure) })
        {
            if (section is not null)
            {
                errors.Add($"{at}:{kind} is set but {at}:Type is posix: set Type to {kind.ToLowerInvariant()} or remove the section.");
            }
        }
    }

    protected override IEnumerable<(string Key, string Value)> KindLines(RepositoryOptions repo, string at) => [];

    protected override Task<ProbeOutcome> ProbeKindAsync(RepositoryOptions repo, string at, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var path = repo.Path;
        var existing = path;
        while (!Directory.Exists(existing))
        {
            existing = Path.GetDirectoryName(existing) ?? throw new DirectoryNotFoundException($"No part of '{path}' exists.");
        }

        if (Access(existing, WriteAndSearch) != 0)
        {
            throw new UnauthorizedAccessException(
                $"'{existing}' is not writable by uid {Environment.UserName}: pgBackRest cannot write the repository there.");
        }

        // Listing one entry proves the directory is readable too.
        _ = Directory.EnumerateFileSystemEntries(existing).FirstOrDefault();
        var free = new DriveInfo(existing).AvailableFreeSpace;
        return Task.FromResult(new ProbeOutcome(existing == path ? null : $"'{path}' does not exist yet (stanza-create creates it); '{existing}' is writable", free));
    }

    public override ILeaseObject OpenLeaseObject(RepositoryOptions repo, string at, string name, TimeSpan timeout) =>
        new PosixLeaseObject(Path.Combine(repo.Path, name));

    /// <summary>
    /// A file created whole with link(2), which every pod sees at once on a shared volume. Its version is a
    /// hash of its content; a replace writes a temporary file and renames it over the lease only if the content is still the
    /// version read (a check and a rename, not one atomic step: the window is a few microseconds, and only a lease that
    /// expired unrenewed is ever replaced by another holder).
    /// </summary>
    private sealed class PosixLeaseObject(string path) : ILeaseObject
    {
        public bool EnforcesConditions => true;

        // The content is written to a file of its own and then hard-linked into place (link(2) fails with EEXIST when the
        // lease exists), so no reader ever sees an empty or half-written lease, which it would take for an unreadable one
        // and replace. Reads share the file with everything (.NET maps FileShare to flock(2), and a reader's lock must not
        // make a writer's open fail).
        public async Task<bool> TryCreateAsync(byte[] content, CancellationToken cancellationToken)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            var temporary = await WriteTemporaryAsync(content, cancellationToken).ConfigureAwait(false);
            try
            {
                if (Link(temporary, path) == 0)
                {
                    return true;
                }

                var errno = Marshal.GetLastPInvokeError();
                return errno switch
                {
                    EExist => false,
                    // A volume without hard links (some SMB/CSI shares): create it in place with O_EXCL instead.
                    EPerm or EOpNotSupp => await CreateInPlaceAsync(content, cancellationToken).ConfigureAwait(false),
                    _ => throw new IOException($"link {temporary} {path}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})"),
                };
            }
            finally
            {
                File.Delete(temporary);
            }
        }

        private async Task<bool> CreateInPlaceAsync(byte[] content, CancellationToken cancellationToken)
        {
            try
            {
                await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite);
                await file.WriteAsync(content, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
                return true;
            }
            catch (IOException) when (File.Exists(path))
            {
                return false;
            }
        }

        public async Task<LeaseObjectVersion?> ReadAsync(CancellationToken cancellationToken)
        {
            try
            {
                await using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var buffer = new MemoryStream();
                await file.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
                var content = buffer.ToArray();
                return new LeaseObjectVersion(content, Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(content)));
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                return null;
            }
        }

        private async Task<string> WriteTemporaryAsync(byte[] content, CancellationToken cancellationToken)
        {
            var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                await file.WriteAsync(content, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

            return temporary;
        }

        public async Task<bool> TryReplaceAsync(byte[] content, string version, CancellationToken cancellationToken)
        {
            if ((await ReadAsync(cancellationToken).ConfigureAwait(false))?.Version != version)
            {
                return false;
            }

            var temporary = await WriteTemporaryAsync(content, cancellationToken).ConfigureAwait(false);
            File.Move(temporary, path, overwrite: true);
            return true;
        }

        public async Task DeleteAsync(string version, CancellationToken cancellationToken)
        {
            if ((await ReadAsync(cancellationToken).ConfigureAwait(false))?.Version == version)
            {
                File.Delete(path);
            }
        }

        public void Dispose()
        {
        }
    }

    private const int EPerm = 1;
    private const int EExist = 17;
    private const int EOpNotSupp = 95;

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string existing, string created);

    [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Access(string path, int mode);
}
