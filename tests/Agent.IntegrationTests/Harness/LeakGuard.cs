using System.Collections.Concurrent;

namespace Backrest.Agent.IntegrationTests.Harness;

/// <summary>
/// Last resort against leaked servers: whatever a test forgot to dispose (or could not, after a failure in
/// its setup) is stopped when the test host exits normally.
/// </summary>
internal static class LeakGuard
{
    private static readonly ConcurrentDictionary<object, Action> Cleanups = new();

    static LeakGuard() => AppDomain.CurrentDomain.ProcessExit += (_, _) => RunAll();

    public static void Register(object owner, Action cleanup) => Cleanups[owner] = cleanup;

    public static void Unregister(object owner) => Cleanups.TryRemove(owner, out _);

    private static void RunAll()
    {
        foreach (var (owner, cleanup) in Cleanups)
        {
            try
            {
                cleanup();
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine($"Cleanup of {owner} failed: {ex.Message}");
            }
        }
    }
}
