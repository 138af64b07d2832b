namespace Backrest.Agent.Core.Archive;

/// <summary>WAL PostgreSQL has finished but not yet archived: the <c>.ready</c> files in pg_wal/archive_status.</summary>
public sealed record ReadyBacklog(int Count, long Bytes, TimeSpan OldestAge)
{
    /// <summary>
    /// <c>.done</c> files: segments archived but not yet recycled by a checkpoint. Many of them mean pg_wal holds WAL
    /// only for a checkpoint to remove (CNPG reports the same count).
    /// </summary>
    public int DoneFiles { get; init; }

    /// <summary>
    /// The oldest <c>.ready</c> file's age is the archiving delay: when it grows, WAL is piling up in
    /// pg_wal (disk fills) and the recovery point falls behind, even if pg_stat_archiver says nothing.
    /// </summary>
    public static ReadyBacklog Read(string dataDirectory, DateTimeOffset now)
    {
        var status = new DirectoryInfo(Path.Combine(dataDirectory, "pg_wal", "archive_status"));
        if (!status.Exists)
        {
            return new ReadyBacklog(0, 0, TimeSpan.Zero);
        }

        var count = 0;
        var done = 0;
        long bytes = 0;
        var oldest = now;
        try
        {
            foreach (var ready in status.EnumerateFiles())
            {
                if (ready.Name.EndsWith(".done", StringComparison.Ordinal))
                {
                    done++;
                    continue;
                }

                if (!ready.Name.EndsWith(".ready", StringComparison.Ordinal))
                {
                    continue;
                }

                count++;
                var wal = new FileInfo(Path.Combine(dataDirectory, "pg_wal", Path.GetFileNameWithoutExtension(ready.Name)));
                bytes += wal.Exists ? wal.Length : 0;
                if (ready.LastWriteTimeUtc < oldest)
                {
                    oldest = ready.LastWriteTimeUtc;
                }
            }
        }
        catch (IOException)
        {
            // Files come and go while PostgreSQL archives; a partial count is still useful.
        }

        return new ReadyBacklog(count, bytes, count == 0 ? TimeSpan.Zero : now - oldest) { DoneFiles = done };
    }
}
