using System.Text.RegularExpressions;

namespace Backrest.Agent.Cli;

/// <summary>
/// The agent's messages name the gRPC method to call next ("Wait for it to finish (WatchOperation backup-…)"): right
/// for API clients, but a person at backrestctl needs the command to type. Every message from an agent that
/// backrestctl prints as text goes through <see cref="Text"/>; --json output keeps the agent's words.
/// </summary>
internal static partial class ForPeople
{
    private static readonly (Regex Method, string Command)[] Commands =
    [
        (MethodWithId("WatchOperation"), "backrestctl operation $1 --wait"),
        (MethodWithId("GetOperation"), "backrestctl operation $1"),
        (MethodWithId("CancelOperation"), "backrestctl cancel $1"),
        (Method("StartBackup"), "backrestctl backup --type full"),
        (Method("StartRestore"), "backrestctl restore"),
        (Method("ListBackups"), "backrestctl backups"),
        (Method("ListOperations"), "backrestctl history"),
        (Method("CreateStanza"), "backrestctl stanza-create"),
        (Method("GetStatus"), "backrestctl status"),
        (Method("GetRecoveryWindow"), "backrestctl recovery-window"),
    ];

    public static string Text(string message)
    {
        foreach (var (method, command) in Commands)
        {
            message = method.Replace(message, command);
        }

        return message;
    }

    // Method names are PascalCase words that no other text in the agent's messages uses ("Check" is left alone: too common).
    private static Regex Method(string name) => new($@"\b{name}\b", RegexOptions.CultureInvariant);

    private static Regex MethodWithId(string name) => new($@"\b{name} ([a-z]+-[A-Za-z0-9-]+)", RegexOptions.CultureInvariant);
}
