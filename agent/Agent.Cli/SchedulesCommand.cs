using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>schedules</c>: ListSchedules on every agent: each schedule, its next run and how its last run ended.</summary>
internal static class SchedulesCommand
{
    private static readonly TableColumn[] Columns =
    [
        new("repo"),
        new("type"),
        new("cron"),
        new("time zone"),
        new("next run (UTC)"),
        new("last run (UTC)"),
        new("last result"),
    ];

    public static Command Create(GlobalOptions globals)
    {
        var command = new Command("schedules", "The agent's backup schedules, each with its next run and its last result "
            + "(a schedule fires only on the agent whose PostgreSQL is the primary).");
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var replies = await context.Agents.CallEachAsync(
                (client, options) => client.ListSchedulesAsync(new ListSchedulesRequest(), options), cancellationToken);
            return context.WriteReplies(replies, (_, reply) => Write(context.Output, reply));
        }));
        return command;
    }

    private static void Write(Output output, ListSchedulesReply reply)
    {
        if (reply.Schedules.Count == 0)
        {
            output.Out.WriteLine("no schedules (set Agent:Repositories:N:Schedules:Full, :Diff, :Incr)");
            return;
        }

        var rows = reply.Schedules.Select(s => new[]
        {
            Format.Repo(s.Repo),
            s.Type,
            s.Cron,
            s.TimeZone,
            Format.Time(s.NextRun),
            s.Last is null ? Format.OrNone(null) : Format.Time(s.Last.Started),
            s.Last is null ? Format.OrNone(null)
                : OperationReport.State(s.Last.State) + (s.Last.Error is { } e ? $": {e.Message}" : s.Last.BackupLabel.Length > 0 ? $" ({s.Last.BackupLabel})" : ""),
        }).ToList();
        TableOutput.Write(output, Columns, rows);
    }
}
