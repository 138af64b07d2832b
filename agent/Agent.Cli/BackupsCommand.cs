using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>backups [--repo N]</c>: ListBackups on every agent, as a table.</summary>
internal static class BackupsCommand
{
    private static readonly TableColumn[] Columns =
    [
        new("repo"),
        new("label"),
        new("type"),
        new("prior"),
        new("started (UTC)"),
        new("stopped (UTC)"),
        new("duration", RightAligned: true),
        new("db size", RightAligned: true),
        new("repo size", RightAligned: true),
        new("WAL start..stop"),
    ];

    public static Command Create(GlobalOptions globals)
    {
        var repo = CommonOptions.Repo("Only this repository (as numbered in status); 0 (default): every repository.");
        var command = new Command("backups", "List the backups in the repositories.") { repo };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var request = new ListBackupsRequest { Repo = context.ParseResult.GetValue(repo) };
            var replies = await context.Agents.CallEachAsync(
                (client, options) => client.ListBackupsAsync(request, options),
                cancellationToken);
            return context.WriteReplies(replies, (_, reply) => Write(context.Output, reply));
        }));
        return command;
    }

    private static void Write(Output output, ListBackupsReply reply)
    {
        if (reply.Backups.Count == 0)
        {
            output.Out.WriteLine("no backups");
            return;
        }

        var rows = reply.Backups.Select(backup => new[]
        {
            Format.Repo(backup.Repo),
            backup.Label + (backup.PageChecksumError ? " (!checksum)" : ""),
            backup.Type,
            Format.OrNone(backup.Prior),
            Format.Time(backup.Started),
            Format.Time(backup.Stopped),
            Format.Duration(backup.Started, backup.Stopped),
            Format.SizeOrNone(backup.DatabaseSize),
            backup.HasRepositorySize ? Format.SizeOrNone(backup.RepositorySize) : "n/a (block incremental)",
            $"{Format.OrNone(backup.WalStart)}..{Format.OrNone(backup.WalStop)}",
        }).ToList();
        TableOutput.Write(output, Columns, rows);
    }
}
