namespace Backrest.Agent.Core.Status;

/// <summary>An answer from the status cache and when its oldest part was read (null: some repository never was).</summary>
public sealed record Cached<T>(T Value, DateTimeOffset? ReadAt);
