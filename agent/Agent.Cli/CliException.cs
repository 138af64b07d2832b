namespace Backrest.Agent.Cli;

/// <summary>Ends the command with a one-line message on stderr and the given exit code.</summary>
internal class CliException(string message, int exitCode = ExitCodes.Failure) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
