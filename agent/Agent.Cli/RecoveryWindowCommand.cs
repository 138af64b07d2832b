using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>recovery-window [--repo N]</c>: the span of time a point-in-time restore can reach, per repository.</summary>
internal static class RecoveryWindowCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var repo = CommonOptions.Repo("Only this repository (as numbered in status); 0 (default): every repository.");
        var command = new Command(
            "recovery-window",
            "Show the earliest and latest points a restore can reach: from the end of the oldest backup to the last archived WAL.")
        {
            repo,
        };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var request = new GetRecoveryWindowRequest { Repo = context.ParseResult.GetValue(repo) };
            var replies = await context.Agents.CallEachAsync(
                (client, options) => client.GetRecoveryWindowAsync(request, options),
                cancellationToken);
            return context.WriteReplies(replies, (_, reply) => Write(context.Output.Out, reply));
        }));
        return command;
    }

    private static void Write(TextWriter writer, GetRecoveryWindowReply reply)
    {
        if (reply.Windows.Count == 0)
        {
            writer.WriteLine("no recovery window (no backups)");
            return;
        }

        foreach (var window in reply.Windows)
        {
            var block = new TextBlock(writer, labelWidth: 10);
            block.Line(Format.Repo(window.Repo));
            var earliest = Format.Time(window.EarliestTime) + (window.EarliestTime is null ? "" : " UTC");
            var details = new List<string>();
            if (window.EarliestBackup.Length > 0)
            {
                details.Add("backup " + window.EarliestBackup);
            }

            if (window.EarliestLsn.Length > 0)
            {
                details.Add("LSN " + window.EarliestLsn);
            }

            block.Field("earliest", details.Count > 0 ? $"{earliest} ({string.Join(", ", details)})" : earliest);
            var latest = window.LatestTime is null ? "time unknown" : Format.Time(window.LatestTime) + " UTC";
            block.Field("latest", window.LatestWal.Length > 0 ? $"{latest} (WAL {window.LatestWal})" : latest);
            if (window.Gap is { } gap)
            {
                // A restore to latest stops silently at a gap: the window ends before it.
                var missing = gap.Count == 1 ? gap.FirstMissing : $"{gap.FirstMissing} to {gap.LastMissing}";
                block.Field("GAP", $"{gap.Count} WAL segment(s) missing ({missing})" +
                    (gap.Since is null ? "" : $" since {Format.Time(gap.Since)} UTC") + ": the window ends before it");
            }
        }
    }
}
