using System.CommandLine;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>restore</c>: StartRestore on exactly one agent; the options mirror StartRestoreRequest.</summary>
internal static class RestoreCommand
{
    // The target types whose --target names a point; the others (latest, immediate, standby) take none.
    private static readonly string[] TypesWithTarget = ["time", "xid", "lsn", "name"];

    public static Command Create(GlobalOptions globals)
    {
        var targetType = new Option<string>("--target-type")
        {
            Description = "Recovery target: latest (default: the end of the archived WAL), immediate (the end of the backup), "
                + "time, xid, lsn, name (a restore point), or standby (restore as a standby).",
        };
        targetType.AcceptOnlyFromAmong(["latest", "immediate", "time", "xid", "lsn", "name", "standby"]);
        var target = new Option<string>("--target")
        {
            Description = "The target for time (\"YYYY-MM-DD HH:MM:SS[.ffffff][+TZ]\" or RFC 3339), xid (a number), "
                + "lsn (\"X/X\") or name (a restore point).",
        };
        var set = new Option<string>("--set")
        {
            Description = "Backup label to restore from; default: the newest backup that fits the target.",
            HelpName = "label",
        };
        var repo = CommonOptions.Repo("Repository to restore from (as numbered in status); 0 (default): let pgBackRest choose.");
        var dataDirectory = new Option<string>("--data-directory")
        {
            Description = "Restore into this directory instead of the live data directory (clone, scratch copy, new replica).",
            HelpName = "path",
        };
        var delta = new Option<bool>("--delta")
        {
            Description = "Delta restore: keep files that match the backup. Default when restoring in place over an existing cluster.",
        };
        var noDelta = new Option<bool>("--no-delta")
        {
            Description = "Do not use delta restore. Without --delta or --no-delta the agent decides.",
        };
        var targetAction = new Option<string>("--target-action")
        {
            Description = "What PostgreSQL does when it reaches the target: pause (pgBackRest's default), promote or shutdown.",
        };
        targetAction.AcceptOnlyFromAmong("pause", "promote", "shutdown");
        var targetExclusive = new Option<bool>("--target-exclusive")
        {
            Description = "Stop just before the target instead of just after it.",
        };
        var targetTimeline = new Option<string>("--target-timeline")
        {
            Description = "Timeline to recover along: a number, current or latest.",
            HelpName = "timeline",
        };
        var port = new Option<int>("--port")
        {
            Description = "Port written into the restored cluster's postgresql.auto.conf, so it can start beside the live one.",
        };
        port.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 0 or > 65535)
            {
                result.AddError("--port must be from 1 to 65535.");
            }
        });
        var archiveModeOn = new Option<bool>("--archive-mode-on")
        {
            Description = "Let the restored copy push WAL into this stanza (off by default for a new directory, so a copy cannot write into the live archive).",
        };
        var wait = CommonOptions.Wait("restore");
        var member = new Option<string>("--member")
        {
            Description = "With several agents or --cluster: the agent (its member name, as status shows it) that restores. An in-place " +
                "restore is then refused while PostgreSQL runs on any instance of the cluster.",
            HelpName = "name",
        };

        var command = new Command("restore",
            "Start a restore on one agent (exactly one --agent, or --member with several agents or --cluster).")
        {
            member,
            targetType,
            target,
            set,
            repo,
            dataDirectory,
            delta,
            noDelta,
            targetAction,
            targetExclusive,
            targetTimeline,
            port,
            archiveModeOn,
            wait,
        };
        command.Validators.Add(result =>
        {
            if (result.GetValue(delta) && result.GetValue(noDelta))
            {
                result.AddError("--delta and --no-delta exclude each other.");
            }

            var type = result.GetValue(targetType);
            var hasTarget = !string.IsNullOrEmpty(result.GetValue(target));
            var needsTarget = type is not null && TypesWithTarget.Contains(type);
            if (needsTarget && !hasTarget)
            {
                result.AddError($"--target-type {type} needs --target.");
            }
            else if (hasTarget && !needsTarget)
            {
                result.AddError("--target needs --target-type time, xid, lsn or name.");
            }
        });

        command.SetAction(CommandRunner.Action(globals, async (context, cancellationToken) =>
        {
            var parse = context.ParseResult;
            var agent = await ChooseAgentAsync(context, parse.GetValue(member), inPlace: string.IsNullOrEmpty(parse.GetValue(dataDirectory)), cancellationToken);
            var request = new StartRestoreRequest
            {
                TargetType = parse.GetValue(targetType) ?? "",
                Target = parse.GetValue(target) ?? "",
                Set = parse.GetValue(set) ?? "",
                Repo = parse.GetValue(repo),
                DataDirectory = parse.GetValue(dataDirectory) ?? "",
                TargetAction = parse.GetValue(targetAction) ?? "",
                TargetExclusive = parse.GetValue(targetExclusive),
                TargetTimeline = parse.GetValue(targetTimeline) ?? "",
                Port = parse.GetValue(port),
                ArchiveModeOn = parse.GetValue(archiveModeOn),
            };

            // Left unset when neither flag is given, so that the agent applies its own default.
            if (parse.GetValue(delta))
            {
                request.Delta = true;
            }
            else if (parse.GetValue(noDelta))
            {
                request.Delta = false;
            }

            var operation = await context.Agents.CallAsync(
                agent,
                (client, options) => client.StartRestoreAsync(request, options),
                cancellationToken);
            return await StartedOperation.ReportAsync(context, agent, operation, parse.GetValue(wait), cancellationToken);
        }));
        return command;
    }

    /// <summary>
    /// One agent: it restores (and checks its own PostgreSQL). Several: --member names the one; in place, every instance
    /// of the cluster must have PostgreSQL stopped first (a restored primary beside a running one forks the history, and
    /// running replicas would follow the old one), and an agent that does not answer cannot prove its PostgreSQL stopped.
    /// </summary>
    private static async Task<AgentAddress> ChooseAgentAsync(CommandContext context, string? member, bool inPlace, CancellationToken cancellationToken)
    {
        var agents = context.Agents;
        if (agents.Cluster is null && agents.Agents.Count == 1 && member is null)
        {
            return agents.Agents[0];
        }

        if (member is null)
        {
            throw new CliException($"restore with several agents needs --member NAME (one of the members status shows); got {string.Join(", ", agents.Agents)}",
                ExitCodes.Usage);
        }

        var members = await ClusterView.ReadAsync(agents, roleOnly: true, cancellationToken);
        var target = members.FirstOrDefault(m => m.Role?.Member == member)
            ?? throw new CliException($"no agent answers as member '{member}': " +
                string.Join(", ", members.Select(m => m.Role is null ? $"{m.Agent} unreachable" : $"{m.Agent} is {m.Name}")));
        if (inPlace)
        {
            var running = members.Where(m => m.Role is { PostgresUp: true }).Select(m => $"{m.Name} ({m.Agent}, {m.Role!.Role})").ToList();
            var unknown = members.Where(m => m.Role is null).Select(m => m.Agent.ToString()).ToList();
            if (running.Count > 0 || unknown.Count > 0)
            {
                throw new CliException("an in-place restore needs PostgreSQL stopped on every instance of the cluster; " +
                    (running.Count > 0 ? $"it runs on {string.Join(", ", running)}" : "") +
                    (running.Count > 0 && unknown.Count > 0 ? "; " : "") +
                    (unknown.Count > 0 ? $"these agents do not answer, so their PostgreSQL may run: {string.Join(", ", unknown)}" : "") +
                    ". Stop PostgreSQL everywhere (scale the StatefulSet's postgres down, keep the agents), then restore; " +
                    "a restore into a new directory (--data-directory) needs none of this.");
            }
        }

        return target.Agent;
    }
}
