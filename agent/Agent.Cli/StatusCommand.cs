using System.CommandLine;
using System.Globalization;
using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary><c>status</c>: GetStatus on every agent.</summary>
internal static class StatusCommand
{
    public static Command Create(GlobalOptions globals)
    {
        var command = new Command("status",
            "Show each agent's PostgreSQL, repositories (reachability, info), WAL archiving, running operation, settings and warnings. " +
            "With several agents or --cluster: one row per agent and a summary with the recovery window. " +
            "Exit 1 when a repository is unreachable (cluster view: also an agent unreachable, PostgreSQL down, or not exactly one primary).");
        var refresh = new Option<bool>("--refresh")
        {
            Description = "Probe every repository and read its info now instead of answering from the agent's cache (waits for a dead repository's deadline).",
        };
        var detail = new Option<bool>("--detail")
        {
            Description = "With several agents (or --cluster): each agent's full status instead of the cluster view (one row per agent and a summary).",
        };
        command.Options.Add(refresh);
        command.Options.Add(detail);
        command.SetAction(CommandRunner.Action(globals, (context, cancellationToken) =>
            (context.Agents.Cluster is not null || context.Agents.Agents.Count > 1) && !context.ParseResult.GetValue(detail) && !context.ParseResult.GetValue(refresh)
                ? RunClusterAsync(context, cancellationToken)
                : RunAsync(context, context.ParseResult.GetValue(refresh), cancellationToken)));
        return command;
    }

    /// <summary>One row per agent and a summary; exit 1 when the cluster is degraded (an agent unreachable, PostgreSQL
    /// down, not exactly one primary, a repository unreachable).</summary>
    private static async Task<int> RunClusterAsync(CommandContext context, CancellationToken cancellationToken)
    {
        var members = await ClusterView.ReadAsync(context.Agents, roleOnly: false, cancellationToken);
        var problems = ClusterView.Problems(members);
        var now = context.Time.GetUtcNow();
        if (context.Json)
        {
            context.Output.WriteJson(ClusterView.ToJson(members, problems, context.Agents.Cluster, now));
        }
        else
        {
            ClusterView.WriteTable(context.Output, members, now);
            ClusterView.WriteSummary(context.Output, members, problems, now);
        }

        return problems.Count == 0 ? ExitCodes.Success : ExitCodes.Failure;
    }

    private static async Task<int> RunAsync(CommandContext context, bool refresh, CancellationToken cancellationToken)
    {
        var replies = await context.Agents.CallEachAsync(
            (client, options) => client.GetStatusAsync(new GetStatusRequest { Refresh = refresh }, options),
            cancellationToken);
        var first = true;
        var exitCode = context.WriteReplies(
            replies,
            (agent, status) =>
            {
                if (!first)
                {
                    context.Output.Out.WriteLine();
                }

                first = false;
                Write(new TextBlock(context.Output.Out, labelWidth: 18), agent, status, context.Time.GetUtcNow());
            },
            headings: false);

        // A dead repository fails the command even though the agent answered: scripts and probes must notice it.
        foreach (var (agent, status, _) in replies)
        {
            foreach (var problem in UnreachableRepositories(status))
            {
                context.Output.Fail($"{agent}: {problem}");
                exitCode = ExitCodes.Failure;
            }
        }

        return exitCode;
    }

    /// <summary>Each unreachable repository of <paramref name="status"/>, as one problem line (callers prefix the agent).</summary>
    internal static IEnumerable<string> UnreachableRepositories(AgentStatus? status) =>
        status?.Pgbackrest?.Repositories.Where(r => r.Reachability is { Reachable: false })
            .Select(r => $"{Format.Repo(r.Repo)} ({r.Type}) is unreachable: {r.Reachability.ErrorClass}: {r.Reachability.Message}") ?? [];

    /// <summary>A backup lease: who backs up into the repository, what, since and until when unrenewed.</summary>
    internal static string DescribeLease(BackupLeaseState lease, DateTimeOffset now)
    {
        var expires = lease.Expires?.ToDateTimeOffset();
        var text = $"{lease.Holder} runs {Format.OrNone(lease.Operation)}" +
            (lease.OperationId.Length > 0 ? $" (operation {lease.OperationId})" : "") +
            $", since {Format.TimeWithAge(lease.Since, now)}, " +
            (expires is null ? "no expiry"
                : expires > now ? $"expires {Format.Time(lease.Expires)} UTC unless renewed"
                : $"EXPIRED {Format.Duration(now - expires.Value)} ago (its holder stopped renewing it; the next backup takes it over)");
        return text + (lease.HeldHere ? " [this agent]" : $" [read {Format.Seconds(lease.ReadAgeSeconds)} ago]");
    }

    /// <summary>The running operation in one line: what, how far, and its phase.</summary>
    internal static string DescribeRunning(Operation operation)
    {
        var text = $"{Format.OrNone(operation.Description)} {Format.Percent(operation.Percent)}";
        return operation.Phase.Length > 0 ? text + " " + operation.Phase : text;
    }

    /// <summary>WAL waiting to be archived: how many segments, and how long the oldest has waited.</summary>
    internal static string DescribeBacklog(ArchiveStatus archive) =>
        archive.ReadyCount == 0 ? "0 segments"
        : $"{Format.Integer(archive.ReadyCount)} segments, {Format.Size(archive.ReadyBytes)}, oldest {Format.Seconds(archive.OldestReadyAgeSeconds)}";

    internal static void Write(TextBlock block, AgentAddress agent, AgentStatus status, DateTimeOffset now)
    {
        block.Line($"agent {agent}" + (status.AgentVersion.Length > 0 ? $" (version {status.AgentVersion})" : ""));
        block.Field("stanza", Format.OrNone(status.Stanza));
        WritePostgres(block, status.Postgres);
        WritePgBackRest(block, status.Pgbackrest, now);
        block.Field("operation", status.RunningOperation is { } operation ? $"{operation.Id}  {DescribeRunning(operation)}" : "none");
        foreach (var lease in status.BackupLeases)
        {
            block.Field($"{Format.Repo(lease.Repo)} lease", DescribeLease(lease, now));
        }
        foreach (var retention in status.Retention)
        {
            block.Field($"repo{retention.Repo} retention", retention.Description);
        }
        WriteArchive(block, status.Archive, now);

        if (status.Settings.Count > 0)
        {
            block.Heading("settings");
            foreach (var setting in status.Settings)
            {
                block.Item($"{setting.Key}={setting.Value}" + (setting.Source.Length > 0 ? $" ({setting.Source})" : ""));
            }
        }

        if (status.Warnings.Count > 0)
        {
            block.Heading("warnings");
            foreach (var warning in status.Warnings)
            {
                block.Item("! " + warning);
            }
        }
    }

    private static void WritePostgres(TextBlock block, PostgresStatus? postgres)
    {
        if (postgres is null)
        {
            block.Field("postgresql", "not reported");
            return;
        }

        if (!postgres.Reachable)
        {
            block.Field("postgresql", "unreachable" + (postgres.Error.Length > 0 ? ": " + postgres.Error : ""));
            return;
        }

        var parts = new List<string> { "reachable", Format.OrNone(postgres.Role) };
        if (postgres.Version.Length > 0)
        {
            parts.Add("version " + postgres.Version);
        }

        if (postgres.DataDirectory.Length > 0)
        {
            parts.Add("data " + postgres.DataDirectory);
        }

        block.Field("postgresql", string.Join(", ", parts));
    }

    private static void WritePgBackRest(TextBlock block, PgBackRestStatus? pgbackrest, DateTimeOffset now)
    {
        if (pgbackrest is null)
        {
            block.Field("pgbackrest", "not reported");
            return;
        }

        var stanza = $"stanza {Format.OrNone(pgbackrest.StanzaStatusMessage)} ({pgbackrest.StanzaStatusCode})";
        block.Field("pgbackrest", (pgbackrest.Version.Length > 0 ? pgbackrest.Version + ", " : "") + stanza);
        if (pgbackrest.Error.Length > 0)
        {
            block.Field("info error", pgbackrest.Error);
        }

        if (pgbackrest.InfoTime is not null)
        {
            block.Field("info read", Format.TimeWithAge(pgbackrest.InfoTime, now), indent: 2);
        }

        foreach (var repo in pgbackrest.Repositories)
        {
            block.Field(
                Format.Repo(repo.Repo),
                $"{Format.OrNone(repo.Type)}: {Format.OrNone(repo.StatusMessage)} ({repo.StatusCode}), {DescribeReachability(repo.Reachability)}",
                indent: 2);
            if (repo.InfoError.Length > 0)
            {
                block.Field("", "info error: " + repo.InfoError, indent: 2);
            }
        }

        if (pgbackrest.BackupLockHeld)
        {
            block.Field("backup lock", "held (a backup is running)");
        }
    }

    private static string DescribeReachability(RepositoryReachability? reachability)
    {
        if (reachability is null)
        {
            return "not probed yet";
        }

        var latency = string.Create(CultureInfo.InvariantCulture, $"{reachability.LatencySeconds * 1000:0} ms");
        if (!reachability.Reachable)
        {
            return $"UNREACHABLE ({reachability.ErrorClass}, {latency}): {reachability.Message}";
        }

        var text = "reachable (" + latency + (reachability.HasFreeBytes ? ", " + Format.Size(reachability.FreeBytes) + " free" : "") + ")";
        return reachability.Message.Length > 0 ? $"{text}: {reachability.Message}" : text;
    }

    private static void WriteArchive(TextBlock block, ArchiveStatus? archive, DateTimeOffset now)
    {
        if (archive is null)
        {
            block.Field("archive", "not reported");
            return;
        }

        block.Heading("archive");
        block.Field(
            "last WAL",
            archive.LastArchivedWal.Length > 0
                ? $"{archive.LastArchivedWal} at {Format.TimeWithAge(archive.LastArchivedTime, now)}"
                : "none",
            indent: 2);
        block.Field("ready", DescribeBacklog(archive), indent: 2);
        if (archive.BlockingRepos.Count > 0)
        {
            block.Field("blocked by", string.Join(", ", archive.BlockingRepos.Select(Format.Repo)) +
                " (the latest push failed there; PostgreSQL keeps WAL for every repository)", indent: 2);
        }

        if (archive.HasWalVolumeFreeBytes)
        {
            block.Field("pg_wal volume", Format.Size(archive.WalVolumeFreeBytes) + " free" + (archive.HasWalVolumeFullHours
                ? string.Create(CultureInfo.InvariantCulture, $", full in {archive.WalVolumeFullHours:0.#} h at the current backlog growth")
                : ""), indent: 2);
        }
        if (archive.DroppedSegments > 0)
        {
            block.Field("dropped", Format.Integer(archive.DroppedSegments) + " segments", indent: 2);
        }

        foreach (var repo in archive.Repositories)
        {
            var text = string.Create(
                CultureInfo.InvariantCulture,
                $"pushed {repo.Pushed}, failed {repo.Failed}, {Format.Size(repo.Bytes)}");
            if (repo.LastSuccessTime is not null)
            {
                text += ", last success " + Format.Time(repo.LastSuccessTime) + " UTC";
            }

            block.Field(Format.Repo(repo.Repo), text, indent: 2);
            if (repo.LastError.Length > 0)
            {
                block.Field("", $"last error {Format.Time(repo.LastErrorTime)} UTC: {repo.LastError}", indent: 2);
            }
        }

        if (archive.PgStatArchiver is { } stats)
        {
            var text = string.Create(
                CultureInfo.InvariantCulture,
                $"archived {stats.ArchivedCount}, failed_count {stats.FailedCount}");
            if (stats.LastFailedWal.Length > 0)
            {
                text += $", last failed {stats.LastFailedWal} at {Format.Time(stats.LastFailedTime)} UTC";
            }

            block.Field("pg_stat_archiver", text, indent: 2);
        }
    }
}
