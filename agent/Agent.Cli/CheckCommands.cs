using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>check</c> (Check on every agent) and <c>stanza-create</c> (CreateStanza on the primary).</summary>
internal static class CheckCommands
{
    public static Command CreateCheck(GlobalOptions globals)
    {
        var command = new Command("check", "Run pgBackRest's check: archiving works and every repository is reachable. Exit 1 if anything fails.");
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var replies = await context.Agents.CallEachAsync(
                (client, options) => client.CheckAsync(new CheckRequest(), options),
                cancellationToken);
            var exitCode = context.WriteReplies(replies, (_, reply) => Write(context.Output.Out, reply));
            return replies.Any(r => r.Reply is { Ok: false }) ? ExitCodes.Failure : exitCode;
        }));
        return command;
    }

    public static Command CreateStanzaCreate(GlobalOptions globals)
    {
        var command = new Command(
            "stanza-create",
            "Create the pgBackRest stanza in every repository, on the agent whose PostgreSQL is the primary.");
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var agent = await context.Agents.FindPrimaryAsync(context.Output.Fail, cancellationToken);
            var reply = await context.Agents.CallAsync(
                agent,
                (client, options) => client.CreateStanzaAsync(new CreateStanzaRequest(), options),
                cancellationToken);
            if (context.Json)
            {
                context.Output.WriteJson(reply);
            }
            else
            {
                context.Output.Out.WriteLine($"{agent}: " + (reply.Message.Length > 0 ? reply.Message : "stanza created"));
            }

            return ExitCodes.Success;
        }));
        return command;
    }

    private static void Write(TextWriter writer, CheckReply reply)
    {
        writer.WriteLine(reply.Ok ? "check ok" : "check FAILED");
        var block = new TextBlock(writer, labelWidth: 8);
        foreach (var repo in reply.Repositories)
        {
            block.Field(Format.Repo(repo.Repo), (repo.Ok ? "ok" : "FAILED").PadRight(6) + (repo.Message.Length > 0 ? "  " + repo.Message : ""));
        }
    }
}
