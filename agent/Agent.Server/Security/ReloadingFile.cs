namespace Backrest.Agent.Server.Security;

/// <summary>
/// A value loaded from files and loaded again when any of them changes (Kubernetes updates a mounted Secret by
/// swapping a symlink, so the change shows in the target's write time). Checked at most once a second; a file
/// caught half-written keeps the previous value until it loads.
/// </summary>
internal sealed class ReloadingFile<T>(string[] paths, Func<string[], T> load, TimeProvider time) where T : class
{
    private static readonly TimeSpan CheckInterval = TimeSpan.FromSeconds(1);
    private readonly Lock gate = new();
    private string stamp = "";
    private T? value;
    private long checkedAt = long.MinValue;

    /// <summary>The current value; throws when the files never loaded.</summary>
    public T Value
    {
        get
        {
            lock (gate)
            {
                var now = time.GetTimestamp();
                if (value is null || time.GetElapsedTime(checkedAt, now) >= CheckInterval)
                {
                    checkedAt = now;
                    var current = Stamp();
                    if (current != stamp || value is null)
                    {
                        try
                        {
                            value = load(paths);
                            stamp = current;
                        }
                        catch (Exception) when (value is not null)
                        {
                            // Mid-rotation (certificate updated, key not yet): keep serving the old pair; the next check retries.
                        }
                    }
                }

                return value;
            }
        }
    }

    private string Stamp() => string.Join('|', paths.Select(p =>
    {
        var info = new FileInfo(p);
        return info.Exists ? $"{info.LastWriteTimeUtc.Ticks}:{info.Length}" : "missing";
    }));
}
