namespace Backrest.Agent.Core.Repositories;

/// <summary>The content of a small object in a repository and the version a conditional write or delete must match.</summary>
public sealed record LeaseObjectVersion(byte[] Content, string Version);

/// <summary>
/// One small object in a repository, written only conditionally: created if absent, replaced or deleted only while it is
/// still the version read. The backup lease (Cluster/BackupLease) is built on it. Each repository kind maps the three
/// conditions to its storage's own: posix O_EXCL, Azure If-None-Match/If-Match, S3 If-None-Match/If-Match, GCS
/// ifGenerationMatch.
/// </summary>
public interface ILeaseObject : IDisposable
{
    /// <summary>
    /// False when this store may accept a conditional write it does not enforce (some S3-compatible stores and emulators
    /// ignore the headers): the lease then reads back after a pause to see whether another writer overwrote it.
    /// </summary>
    bool EnforcesConditions { get; }

    /// <summary>Creates the object; false when it already exists.</summary>
    Task<bool> TryCreateAsync(byte[] content, CancellationToken cancellationToken);

    /// <summary>The object as it is now; null when absent.</summary>
    Task<LeaseObjectVersion?> ReadAsync(CancellationToken cancellationToken);

    /// <summary>Replaces the object if it is still <paramref name="version"/>; false when it changed or went.</summary>
    Task<bool> TryReplaceAsync(byte[] content, string version, CancellationToken cancellationToken);

    /// <summary>Deletes the object if it is still <paramref name="version"/>; nothing when it changed or went.</summary>
    Task DeleteAsync(string version, CancellationToken cancellationToken);
}
