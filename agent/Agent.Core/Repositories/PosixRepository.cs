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
    /// A file created with O_EXCL (FileMode.CreateNew), which every pod sees at once on a shared volume. Its version is a
    /// hash of its content; a replace writes a temporary file and renames it over the lease only if the content is still the
    /// version read (a check and a rename, not one atomic step: the window is a few microseconds, and only a lease that
    /// expired unrenewed is ever replaced by another holder).
    /// </summary>
    private sealed class PosixLeaseObject(string path) : ILeaseObject
    {
        public bool EnforcesConditions => true;

        public async Task<bool> TryCreateAsync(byte[] content, CancellationToken cancellationToken)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            try
            {
                await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
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
                var content = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
                return new LeaseObjectVersion(content, Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(content)));
            }
            catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
            {
                return null;
            }
        }

        public async Task<bool> TryReplaceAsync(byte[] content, string version, CancellationToken cancellationToken)
        {
            if ((await ReadAsync(cancellationToken).ConfigureAwait(false))?.Version != version)
            {
                return false;
            }

            var temporary = $"{path}.{Guid.NewGuid():N}.tmp";
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                await file.WriteAsync(content, cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
            }

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

    [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Access(string path, int mode);
}
