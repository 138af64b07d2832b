using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>history [--limit N]</c>: ListOperations on every agent, newest first.</summary>
internal static class HistoryCommand
{
    private static readonly TableColumn[] Columns =
    [
        new("id"),
        new("description"),
        new("trigger"),
        new("state"),
        new("started (UTC)"),
        new("took", RightAligned: true),
        new("backup"),
        new("error"),
    ];

    public static Command Create(GlobalOptions globals)
    {
        var limit = new Option<int>("--limit", "-n") { Description = "At most this many operations, newest first (1-200).", DefaultValueFactory = _ => 20 };
        limit.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 1 or > 200)
            {
                result.AddError("--limit must be from 1 to 200.");
            }
        });
        var command = new Command("history", "The agent's recent operations (kept on disk across restarts): start, end, trigger, result.") { limit };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var request = new ListOperationsRequest { Limit = context.ParseResult.GetValue(limit) };
            var replies = await context.Agents.CallEachAsync((client, options) => client.ListOperationsAsync(request, options), cancellationToken);
            return context.WriteReplies(replies, (_, reply) => Write(context.Output, reply));
        }));
        return command;
    }

    private static void Write(Output output, ListOperationsReply reply)
    {
        if (reply.Operations.Count == 0)
        {
            output.Out.WriteLine("no operations");
            return;
        }

        var rows = reply.Operations.Select(o => new[]
        {
            o.Id,
            o.Description,
            o.Trigger == OperationTrigger.Schedule ? "schedule" : "manual",
            OperationReport.State(o.State),
            Format.Time(o.Started),
            o.Finished is null ? Format.OrNone(null) : Format.Duration(o.Started, o.Finished),
            Format.OrNone(o.BackupLabel),
            o.Error is { } e ? $"{e.Code}: {ForPeople.Text(e.Message)}" : Format.OrNone(null),
        }).ToList();
        TableOutput.Write(output, Columns, rows);
    }
}
