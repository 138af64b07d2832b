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

    [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Access(string path, int mode);
}
