using System.CommandLine;
using System.CommandLine.Invocation;
using Backrest.Agent.Cli;

var globals = new GlobalOptions();
var root = new RootCommand("backrestctl: control the backrest agents, the pgBackRest sidecars beside PostgreSQL.")
{
    globals.Agent,
    globals.Cluster,
    globals.Json,
    globals.Timeout,
    StatusCommand.Create(globals),
    BackupCommand.Create(globals),
    RestoreCommand.Create(globals),
    BackupsCommand.Create(globals),
    OperationCommand.Create(globals),
    CancelCommand.Create(globals),
    HistoryCommand.Create(globals),
    SchedulesCommand.Create(globals),
    RetentionCommands.CreateExpire(globals),
    RetentionCommands.CreateDelete(globals),
    RecoverabilityCommands.CreateVerify(globals),
    RecoverabilityCommands.CreateDrill(globals),
    CheckCommands.CreateCheck(globals),
    CheckCommands.CreateStanzaCreate(globals),
    RecoveryWindowCommand.Create(globals),
};

foreach (var option in globals.SecurityOptions)
{
    root.Options.Add(option);
}

var parseResult = root.Parse(args);
if (parseResult.Action is ParseErrorAction parseError)
{
    // System.CommandLine returns 1 for usage errors; 2 keeps a typo apart from a failed backup.
    parseError.ShowHelp = false;
    // Typo suggestions go to Output by default; they belong with the error, on stderr, away from piped results.
    await parseResult.InvokeAsync(new InvocationConfiguration { Output = Console.Error });
    var command = parseResult.CommandResult.Command;
    await Console.Error.WriteLineAsync(
        $"Run 'backrestctl {(command is RootCommand ? "" : command.Name + " ")}--help' for usage.");
    return ExitCodes.Usage;
}

return await parseResult.InvokeAsync();
