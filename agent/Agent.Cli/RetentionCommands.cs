using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>expire [--repo N] [--dry-run]</c> and <c>delete LABEL [--repo N] [--force] [--dry-run]</c> on the primary's agent.</summary>
internal static class RetentionCommands
{
    public static Command CreateExpire(GlobalOptions globals)
    {
        var repo = CommonOptions.Repo("Only this repository, 1-4; 0 (default): every repository.");
        var dryRun = new Option<bool>("--dry-run") { Description = "List what the configured retention would remove; remove nothing." };
        var command = new Command("expire", "Apply the configured retention now (pgBackRest also does after each backup); "
            + "--dry-run lists what would go first.") { repo, dryRun };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var request = new ExpireRequest { Repo = context.ParseResult.GetValue(repo), DryRun = context.ParseResult.GetValue(dryRun) };
            var agent = await context.Agents.FindPrimaryAsync(context.Output.Fail, cancellationToken);
            var reply = await context.Agents.CallAsync(agent, (client, options) => client.ExpireAsync(request, options), cancellationToken);
            if (context.Json)
            {
                context.Output.WriteJson(reply);
                return ExitCodes.Success;
            }

            var verb = reply.DryRun ? "would remove" : "removed";
            if (reply.Backups.Count == 0 && reply.Archive.Count == 0)
            {
                context.Output.Out.WriteLine(reply.DryRun ? "nothing would be removed" : "nothing removed");
            }

            foreach (var set in reply.Backups)
            {
                context.Output.Out.WriteLine($"{Format.Repo(set.Repo)}: {verb} backup {string.Join(", ", set.Labels)}");
            }

            foreach (var wal in reply.Archive)
            {
                context.Output.Out.WriteLine($"{Format.Repo(wal.Repo)}: {verb} WAL {wal.Start}..{wal.Stop} ({wal.ArchiveId})");
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    public static Command CreateDelete(GlobalOptions globals)
    {
        var label = new Argument<string>("label") { Description = "The backup label, as listed by 'backrestctl backups'." };
        var repo = CommonOptions.Repo("Repository holding the backup, 1-4; 0 (default): the first configured repository.");
        var force = new Option<bool>("--force") { Description = "Delete it even if it is not the oldest backup (leaves a gap in the recovery window)." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Show what would go and the recovery window after; delete nothing." };
        var command = new Command("delete", "Delete one backup and the diffs and incrs built on it; shows what goes and where the "
            + "recovery window starts after. Refuses the only full backup, a backup that is not the oldest (unless --force) and one "
            + "a running restore reads.") { label, repo, force, dryRun };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var request = new DeleteBackupRequest
            {
                Label = context.ParseResult.GetRequiredValue(label),
                Repo = context.ParseResult.GetValue(repo),
                Force = context.ParseResult.GetValue(force),
                DryRun = context.ParseResult.GetValue(dryRun),
            };
            var agent = await context.Agents.FindPrimaryAsync(context.Output.Fail, cancellationToken);
            var reply = await context.Agents.CallAsync(agent, (client, options) => client.DeleteBackupAsync(request, options), cancellationToken);
            if (context.Json)
            {
                context.Output.WriteJson(reply);
                return ExitCodes.Success;
            }

            var block = new TextBlock(context.Output.Out);
            block.Line($"{(reply.DryRun ? "would delete" : "deleted")} from {Format.Repo(reply.Repo)}: {string.Join(", ", reply.Removed)}");
            block.Field("recovery window after", reply.OldestRemaining is { } oldest
                ? $"from {Format.Time(oldest.Stopped)} UTC (end of {oldest.Label})"
                : "none: no backup left");
            return ExitCodes.Success;
        }));
        return command;
    }
}
