namespace Backrest.Agent.Cli;

internal static class ExitCodes
{
    public const int Success = 0;

    /// <summary>An agent refused or failed the request, could not be reached, or an operation failed.</summary>
    public const int Failure = 1;

    /// <summary>The command line is wrong; kept apart from 1 so scripts can tell a typo from a failed backup.</summary>
    public const int Usage = 2;

    /// <summary>Ctrl+C / SIGTERM, as shells report a process ended by SIGINT (128 + 2).</summary>
    public const int Interrupted = 130;
}
