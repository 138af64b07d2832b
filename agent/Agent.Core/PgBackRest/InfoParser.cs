using System.Text.Json;

namespace Backrest.Agent.Core.PgBackRest;

public sealed record StanzaInfo(
    string Name,
    int StatusCode,
    string StatusMessage,
    LockInfo BackupLock,
    LockInfo? RestoreLock,
    IReadOnlyList<DatabaseInfo> Databases,
    IReadOnlyList<ArchiveInfo> Archives,
    IReadOnlyList<RepositoryInfo> Repositories,
    IReadOnlyList<BackupInfo> Backups);

/// <summary>Size and SizeComplete exist from pgBackRest 2.48 (backup) and 2.56 (restore), per repo from 2.59.</summary>
public sealed record LockInfo(bool Held, long? Size, long? SizeComplete);

/// <summary>system-id is a 64-bit integer beyond double precision: parsed as ulong.</summary>
public sealed record DatabaseInfo(int Id, int RepoKey, ulong SystemId, string Version);

public sealed record ArchiveInfo(int DatabaseId, int RepoKey, string Id, string? Min, string? Max);

public sealed record RepositoryInfo(int Key, string Cipher, int StatusCode, string StatusMessage);

public sealed record BackupInfo(
    string Label,
    string Type,
    string? Prior,
    IReadOnlyList<string> References,
    DateTimeOffset Start,
    DateTimeOffset Stop,
    string? ArchiveStart,
    string? ArchiveStop,
    string? LsnStart,
    string? LsnStop,
    int RepoKey,
    long DatabaseSize,
    long DatabaseDelta,
    long? RepositorySize,
    long? RepositoryDelta,
    bool? Error,
    string PgBackRestVersion,
    int DatabaseId)
{
    /// <summary>Block-incremental backups (2.46+): repository bytes of the map; absent before and for other backups.</summary>
    public long? RepositorySizeMap { get; init; }

    public long? RepositoryDeltaMap { get; init; }

    /// <summary>How many annotations (key/value) the backup carries (pgBackRest 2.41+ lists them); null when none is listed.</summary>
    public int? Annotations { get; init; }
}

/// <summary>Parses <c>pgbackrest info --output=json</c>; fields newer than 2.45 are read when present, never required.</summary>
public static class InfoParser
{
    public static IReadOnlyList<StanzaInfo> Parse(string json) => Parse(System.Text.Encoding.UTF8.GetBytes(json));

    /// <summary>From the bytes pgBackRest printed: no string of the whole output is made (18 MB with 1,000 backups).</summary>
    public static IReadOnlyList<StanzaInfo> Parse(ReadOnlyMemory<byte> utf8)
    {
        using var document = JsonDocument.Parse(utf8);
        return document.RootElement.EnumerateArray().Select(ParseStanza).ToList();
    }

    private static StanzaInfo ParseStanza(JsonElement stanza)
    {
        var status = stanza.GetProperty("status");
        LockInfo backupLock = new(false, null, null);
        LockInfo? restoreLock = null;
        if (status.TryGetProperty("lock", out var locks))
        {
            if (locks.TryGetProperty("backup", out var backup))
            {
                backupLock = ParseLock(backup);
            }

            if (locks.TryGetProperty("restore", out var restore))
            {
                restoreLock = ParseLock(restore);
            }
        }

        return new StanzaInfo(
            stanza.GetProperty("name").GetString()!,
            status.GetProperty("code").GetInt32(),
            status.GetProperty("message").GetString() ?? "",
            backupLock,
            restoreLock,
            Array(stanza, "db").Select(db => new DatabaseInfo(
                db.GetProperty("id").GetInt32(),
                RepoKey(db),
                db.GetProperty("system-id").GetUInt64(),
                db.GetProperty("version").GetString()!)).ToList(),
            Array(stanza, "archive").Select(a => new ArchiveInfo(
                a.GetProperty("database").GetProperty("id").GetInt32(),
                RepoKey(a.GetProperty("database")),
                a.GetProperty("id").GetString()!,
                StringOrNull(a, "min"),
                StringOrNull(a, "max"))).ToList(),
            Array(stanza, "repo").Select(r => new RepositoryInfo(
                r.GetProperty("key").GetInt32(),
                StringOrNull(r, "cipher") ?? "none",
                r.GetProperty("status").GetProperty("code").GetInt32(),
                r.GetProperty("status").GetProperty("message").GetString() ?? "")).ToList(),
            Array(stanza, "backup").Select(ParseBackup).ToList());
    }

    private static BackupInfo ParseBackup(JsonElement b)
    {
        var info = b.GetProperty("info");
        var repository = info.TryGetProperty("repository", out var r) ? r : default;
        return new BackupInfo(
            b.GetProperty("label").GetString()!,
            b.GetProperty("type").GetString()!,
            StringOrNull(b, "prior"),
            b.TryGetProperty("reference", out var refs) && refs.ValueKind == JsonValueKind.Array
                ? refs.EnumerateArray().Select(x => x.GetString()!).ToList()
                : [],
            DateTimeOffset.FromUnixTimeSeconds(b.GetProperty("timestamp").GetProperty("start").GetInt64()),
            DateTimeOffset.FromUnixTimeSeconds(b.GetProperty("timestamp").GetProperty("stop").GetInt64()),
            b.TryGetProperty("archive", out var archive) ? StringOrNull(archive, "start") : null,
            b.TryGetProperty("archive", out archive) ? StringOrNull(archive, "stop") : null,
            b.TryGetProperty("lsn", out var lsn) ? StringOrNull(lsn, "start") : null,
            b.TryGetProperty("lsn", out lsn) ? StringOrNull(lsn, "stop") : null,
            RepoKey(b.GetProperty("database")),
            info.GetProperty("size").GetInt64(),
            info.GetProperty("delta").GetInt64(),
            // Block-incremental backups report size-map/delta-map instead of size.
            Int64OrNull(repository, "size"),
            Int64OrNull(repository, "delta"),
            b.TryGetProperty("error", out var error) && error.ValueKind is JsonValueKind.True or JsonValueKind.False ? error.GetBoolean() : null,
            b.TryGetProperty("backrest", out var backrest) ? StringOrNull(backrest, "version") ?? "" : "",
            // The database generation (info's "db" id) the backup belongs to: a stanza-upgrade starts a new one.
            b.GetProperty("database").GetProperty("id").GetInt32())
        {
            RepositorySizeMap = Int64OrNull(repository, "size-map"),
            RepositoryDeltaMap = Int64OrNull(repository, "delta-map"),
            Annotations = b.TryGetProperty("annotation", out var annotation) && annotation.ValueKind == JsonValueKind.Object
                ? annotation.EnumerateObject().Count()
                : null,
        };
    }

    private static LockInfo ParseLock(JsonElement element) => new(
        element.TryGetProperty("held", out var held) && held.GetBoolean(),
        Int64OrNull(element, "size"),
        Int64OrNull(element, "size-cplt"));

    private static IEnumerable<JsonElement> Array(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var array) && array.ValueKind == JsonValueKind.Array ? array.EnumerateArray() : [];

    private static int RepoKey(JsonElement element) =>
        element.TryGetProperty("repo-key", out var key) ? key.GetInt32() : 1;

    private static string? StringOrNull(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    private static long? Int64OrNull(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number
            ? value.GetInt64()
            : null;
}
