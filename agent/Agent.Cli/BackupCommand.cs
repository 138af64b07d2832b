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

        var from = new Option<string>("--from")
        {
            Description = "With several agents or --cluster: primary (default); standby: the standby whose agent is the cluster's backup " +
                "source (Agent:Cluster:BackupFrom=standby); prefer-standby: that standby, else the primary.",
            DefaultValueFactory = _ => "primary",
        };
        from.AcceptOnlyFromAmong("primary", "prefer-standby", "standby");
        var detach = new Option<bool>("--detach")
        {
            Description = "With several agents or --cluster: return once the backup started instead of following it.",
        };
        var cancelOnExit = new Option<bool>("--cancel-on-exit")
        {
            Description = "Ctrl+C cancels the backup too (by default it stops only the watch; the backup goes on).",
        };

        var command = new Command(
            "backup",
            "Start a backup on the agent whose PostgreSQL is the primary (with several --agent or --cluster, the one reporting role " +
            "primary, or a standby with --from) and, with several agents, follow its progress.")
        {
            type,
            repo,
            wait,
            queue,
            from,
            detach,
            cancelOnExit,
        };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var request = new StartBackupRequest
            {
                Type = context.ParseResult.GetRequiredValue(type),
                Repo = context.ParseResult.GetValue(repo),
                Queue = context.ParseResult.GetValue(queue),
            };
            var source = context.ParseResult.GetRequiredValue(from) switch
            {
                "standby" => BackupSource.Standby,
                "prefer-standby" => BackupSource.PreferStandby,
                _ => BackupSource.Primary,
            };
            var agent = await context.Agents.FindBackupSourceAsync(source, context.Output.Fail, cancellationToken);
            var operation = await context.Agents.CallAsync(
                agent,
                (client, options) => client.StartBackupAsync(request, options),
                cancellationToken);
            var coordinated = context.Agents.Cluster is not null || context.Agents.Agents.Count > 1;
            var follow = context.ParseResult.GetValue(wait) || context.ParseResult.GetValue(cancelOnExit)
                || (coordinated && !context.ParseResult.GetValue(detach));
            return await StartedOperation.ReportAsync(
                context, agent, operation, follow, cancellationToken, context.ParseResult.GetValue(cancelOnExit));
        }));
        return command;
    }
}
