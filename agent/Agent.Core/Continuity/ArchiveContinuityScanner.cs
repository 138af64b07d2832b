using System.Collections.Concurrent;
using System.Text.Json;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Postgres;

namespace Backrest.Agent.Core.Continuity;

/// <summary>
/// Lists one repository's archive with <c>pgbackrest repo-ls</c> (any repository type, encrypted or not) and reads the
/// timeline history files it needs with <c>repo-get</c>. Runs from the status cache's refresh, never per request.
/// </summary>
public sealed class ArchiveContinuityScanner(PgBackRestClient pgBackRest, PostgresClient postgres, TimeProvider time)
{
    // History files never change once archived: read each once per repository and archive id.
    private readonly ConcurrentDictionary<(int Repo, string Path), IReadOnlyList<TimelineSwitch>> _histories = new();
    private long? _segmentSize;

    /// <summary>Null when the repository's current database has archived nothing yet.</summary>
    public async Task<ArchiveContinuity?> ScanAsync(int repo, StanzaInfo info, CancellationToken cancellationToken)
    {
        var database = info.Databases.Where(d => d.RepoKey == repo).MaxBy(d => d.Id);
        var archive = info.Archives.LastOrDefault(a => a.RepoKey == repo && (database is null || a.DatabaseId == database.Id));
        if (archive?.Max is null)
        {
            return null;
        }

        var segmentSize = await SegmentSizeAsync(cancellationToken).ConfigureAwait(false);
        var start = RecoveryStart(info, repo, database?.Id);
        var archivePath = $"archive/{pgBackRest.Stanza}/{archive.Id}";
        var listing = await pgBackRest.RunAsync("repo-ls", [$"--repo={repo}", "--recurse", "--output=json", archivePath],
            cancellationToken, terminateGrace: TimeSpan.FromSeconds(2), keepWholeStdout: true).ConfigureAwait(false);
        if (listing.ExitCode != 0)
        {
            throw PgBackRestErrors.FromFailure("repo-ls", listing.ExitCode, listing.Stderr);
        }

        var files = ParseListing(listing.Stdout);
        var histories = new Dictionary<uint, IReadOnlyList<TimelineSwitch>>();
        // Only the newest timeline's history is needed: it lists every ancestor.
        if (files.Select(f => TimelineHistory.TimelineOfFile(f.Name)).Max() is { } timeline)
        {
            histories[timeline] = await HistoryAsync(repo, $"{archivePath}/{TimelineHistory.FileName(timeline)}", cancellationToken).ConfigureAwait(false);
        }

        return ArchiveContinuity.Analyze(archive.Id, files, histories, start, segmentSize, time.GetUtcNow());
    }

    /// <summary>The first WAL segment of the oldest backup of the repository's current database: where a restore begins reading.</summary>
    internal static string? RecoveryStart(StanzaInfo info, int repo, int? databaseId) =>
        info.Backups.Where(b => b.RepoKey == repo && (databaseId is null || b.DatabaseId == databaseId) && b.ArchiveStart is not null)
            .MinBy(b => b.Start)?.ArchiveStart;

    /// <summary>repo-ls JSON: {"path/name": {"type": "file", "size": n, "time": epoch}, ...}; segments are "name-sha1.ext".</summary>
    internal static IReadOnlyList<ArchivedFile> ParseListing(string json)
    {
        using var document = JsonDocument.Parse(json);
        var files = new List<ArchivedFile>();
        foreach (var entry in document.RootElement.EnumerateObject())
        {
            if (!entry.Value.TryGetProperty("type", out var type) || type.GetString() != "file")
            {
                continue;
            }

            var name = entry.Name[(entry.Name.LastIndexOf('/') + 1)..];
            var dash = name.IndexOf('-', StringComparison.Ordinal);
            DateTimeOffset? stored = entry.Value.TryGetProperty("time", out var t) && t.ValueKind == JsonValueKind.Number
                ? DateTimeOffset.FromUnixTimeSeconds(t.GetInt64())
                : null;
            files.Add(new ArchivedFile(dash > 0 ? name[..dash] : name, stored));
        }

        return files;
    }

    private async Task<IReadOnlyList<TimelineSwitch>> HistoryAsync(int repo, string path, CancellationToken cancellationToken)
    {
        if (_histories.TryGetValue((repo, path), out var known))
        {
            return known;
        }

        var result = await pgBackRest.RunAsync("repo-get", [$"--repo={repo}", path], cancellationToken,
            terminateGrace: TimeSpan.FromSeconds(2), keepWholeStdout: true).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw PgBackRestErrors.FromFailure("repo-get", result.ExitCode, result.Stderr);
        }

        var switches = TimelineHistory.Parse(result.Stdout);
        _histories[(repo, path)] = switches;
        return switches;
    }

    /// <summary>PostgreSQL's wal_segment_size, read once it answers; 16 MiB (the default) until then.</summary>
    private async Task<long> SegmentSizeAsync(CancellationToken cancellationToken)
    {
        if (_segmentSize is { } known)
        {
            return known;
        }

        _segmentSize = await postgres.GetWalSegmentSizeAsync(cancellationToken).ConfigureAwait(false);
        return _segmentSize ?? WalSegment.DefaultSize;
    }
}
