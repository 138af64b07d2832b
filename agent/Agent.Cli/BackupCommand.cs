using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>backup --type full|diff|incr [--repo N] [--queue] [--wait]</c>: StartBackup on the primary.</summary>
internal static class BackupCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var type = new Option<string>("--type", "-t")
        {
            Description = "Backup type: full, diff (changes since the last full) or incr (changes since the last backup). "
                + "pgBackRest takes a full backup when a diff or incr has no prior backup.",
            Required = true,
        };
        type.AcceptOnlyFromAmong("full", "diff", "incr");
        var repo = CommonOptions.Repo("Repository to back up to (as numbered in status); 0 (default): the first configured repository.");
        var wait = CommonOptions.Wait("backup");
        var queue = new Option<bool>("--queue")
        {
            Description = "If another operation runs, wait in the agent's queue (one entry per type and repository) instead of being refused.",
        };

        var command = new Command(
            "backup",
            "Start a backup on the agent whose PostgreSQL is the primary (with several --agent, the one reporting role primary).")
        {
            type,
            repo,
            wait,
            queue,
        };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var request = new StartBackupRequest
            {
                Type = context.ParseResult.GetRequiredValue(type),
                Repo = context.ParseResult.GetValue(repo),
                Queue = context.ParseResult.GetValue(queue),
            };
            var agent = await context.Agents.FindPrimaryAsync(context.Output.Fail, cancellationToken);
            var operation = await context.Agents.CallAsync(
                agent,
                (client, options) => client.StartBackupAsync(request, options),
                cancellationToken);
            return await StartedOperation.ReportAsync(
                context, agent, operation, context.ParseResult.GetValue(wait), cancellationToken);
        }));
        return command;
    }
}
