using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary>
/// <c>verify</c> and <c>drill</c> (<c>[--repo N] [--queue] [--wait]</c>): operations that prove the backups restore, started
/// on the primary's agent.
/// </summary>
internal static class RecoverabilityCommands
{
    public static Command CreateVerify(GlobalOptions globals) => Create(
        globals,
        "verify",
        "Read back every backup file and archived WAL segment and check them against their checksums (pgBackRest verify). " +
        "With --wait, exit 1 when anything is damaged.",
        "Repository to verify (as numbered in status); 0 (default): every repository, one after another.",
        (client, repo, queue, options) => client.VerifyAsync(new VerifyRequest { Repo = repo, Queue = queue }, options));

    public static Command CreateDrill(GlobalOptions globals) => Create(
        globals,
        "drill",
        "Restore the newest backup into the agent's scratch directory, start it privately, replay the archive, run the check " +
        "query, then stop and remove it: proves the backup restores and measures the recovery time.",
        "Repository whose newest backup is restored (as numbered in status); 0 (default): the first configured repository.",
        (client, repo, queue, options) => client.DrillAsync(new DrillRequest { Repo = repo, Queue = queue }, options));

    private static Command Create(GlobalOptions globals, string name, string description, string repoHelp,
        Func<BackupAgent.BackupAgentClient, int, bool, Grpc.Core.CallOptions, Grpc.Core.AsyncUnaryCall<Operation>> start)
    {
        var repo = CommonOptions.Repo(repoHelp);
        var wait = CommonOptions.Wait(name);
        var queue = new Option<bool>("--queue")
        {
            Description = "If another operation runs, wait in the agent's queue instead of being refused.",
        };
        var command = new Command(name, description) { repo, wait, queue };
        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var (repoKey, queued) = (context.ParseResult.GetValue(repo), context.ParseResult.GetValue(queue));
            var agent = await context.Agents.FindPrimaryAsync(context.Output.Fail, cancellationToken);
            var operation = await context.Agents.CallAsync(agent, (client, options) => start(client, repoKey, queued, options), cancellationToken);
            return await StartedOperation.ReportAsync(context, agent, operation, context.ParseResult.GetValue(wait), cancellationToken);
        }));
        return command;
    }
}
