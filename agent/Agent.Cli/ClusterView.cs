using System.Globalization;
using System.Text.Json.Nodes;
using Backrest.Agent.V1;
using Google.Protobuf.WellKnownTypes;

namespace Backrest.Agent.Cli;

/// <summary>What one agent of a cluster said: its role (PostgreSQL only) and its cached status, backups and window.</summary>
internal sealed record ClusterMember(
    AgentAddress Agent,
    GetRoleReply? Role,
    AgentStatus? Status,
    ListBackupsReply? Backups,
    GetRecoveryWindowReply? Window,
    string? Error)
{
    public bool IsPrimary => Role is { PostgresUp: true, Role: "primary" };

    public bool IsStandby => Role is { PostgresUp: true, Role: "standby" };

    public string Name => Role?.Member is { Length: > 0 } member ? member : Agent.ToString();
}

/// <summary>
/// The whole cluster at once: every agent asked in parallel, each under the --timeout deadline, and only for what it
/// holds in memory (status, backups and the window from the agent's cache; PostgreSQL from a reading shared by the calls
/// of the same second), so the view costs about one round trip however many agents there are.
/// </summary>
internal static class ClusterView
{
    public static readonly string[] BackupTypes = ["full", "diff", "incr"];

    public static async Task<IReadOnlyList<ClusterMember>> ReadAsync(AgentConnections agents, bool roleOnly, CancellationToken cancellationToken) =>
        await Task.WhenAll(agents.Agents.Select(agent => ReadOneAsync(agents, agent, roleOnly, cancellationToken)));

    private static async Task<ClusterMember> ReadOneAsync(AgentConnections agents, AgentAddress agent, bool roleOnly, CancellationToken cancellationToken)
    {
        var role = Try(agents.CallAsync(agent, (c, o) => c.GetRoleAsync(new GetRoleRequest(), o), cancellationToken));
        var status = roleOnly ? null : Try(agents.CallAsync(agent, (c, o) => c.GetStatusAsync(new GetStatusRequest(), o), cancellationToken));
        var backups = roleOnly ? null : Try(agents.CallAsync(agent, (c, o) => c.ListBackupsAsync(new ListBackupsRequest(), o), cancellationToken));
        var window = roleOnly ? null : Try(agents.CallAsync(agent, (c, o) => c.GetRecoveryWindowAsync(new GetRecoveryWindowRequest(), o), cancellationToken));
        var (roleReply, roleError) = await role;
        var (statusReply, statusError) = status is null ? default : await status;
        var (backupsReply, _) = backups is null ? default : await backups;
        var (windowReply, _) = window is null ? default : await window;
        return new ClusterMember(agent, roleReply, statusReply, backupsReply, windowReply, roleError ?? statusError);
    }

    private static async Task<(T? Reply, string? Error)> Try<T>(Task<T> call)
        where T : class
    {
        try
        {
            return (await call, null);
        }
        catch (AgentCallException ex)
        {
            return (null, ex.Message);
        }
    }

    /// <summary>Why the cluster is not healthy; empty when it is.</summary>
    public static List<string> Problems(IReadOnlyList<ClusterMember> members)
    {
        var problems = new List<string>();
        foreach (var member in members)
        {
            if (member.Error is not null)
            {
                problems.Add(member.Error); // it names the agent
            }
            else if (member.Role is { PostgresUp: false } role)
            {
                problems.Add($"{member.Name}: PostgreSQL is down: {role.Error}");
            }

            problems.AddRange(StatusCommand.UnreachableRepositories(member.Status).Select(problem => $"{member.Name}: {problem}"));
        }

        var primaries = members.Where(m => m.IsPrimary).ToList();
        if (primaries.Count == 0)
        {
            problems.Add("no agent reports a primary PostgreSQL");
        }
        else if (primaries.Count > 1)
        {
            problems.Add($"{primaries.Count} agents report a primary PostgreSQL (split brain?): {string.Join(", ", primaries.Select(p => p.Name))}");
        }

        return problems;
    }

    /// <summary>How far a standby's replay is behind the primary's current LSN, in bytes; null when either is unknown.</summary>
    public static long? LagBytes(ClusterMember member, ClusterMember? primary) =>
        member.IsStandby && primary?.Role is { } p && TryParseLsn(p.Lsn, out var head) && TryParseLsn(member.Role!.Lsn, out var replayed)
            ? Math.Max(0, (long)(head - replayed))
            : null;

    public static bool TryParseLsn(string text, out ulong lsn)
    {
        lsn = 0;
        var slash = text.IndexOf('/');
        if (slash <= 0
            || !ulong.TryParse(text.AsSpan(0, slash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var high)
            || !ulong.TryParse(text.AsSpan(slash + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var low))
        {
            return false;
        }

        lsn = (high << 32) | low;
        return true;
    }

    /// <summary>The newest backup of <paramref name="type"/> in any repository, from the agent's cached list.</summary>
    public static Backup? Latest(ClusterMember member, string type) =>
        member.Backups?.Backups.Where(b => b.Type == type).MaxBy(b => b.Stopped?.ToDateTimeOffset() ?? DateTimeOffset.MinValue);

    /// <summary>The recovery window to show for the cluster: the primary's answer, else any agent's.</summary>
    public static GetRecoveryWindowReply? Window(IReadOnlyList<ClusterMember> members) =>
        members.Where(m => m.IsPrimary).Concat(members).FirstOrDefault(m => m.Window is { Windows.Count: > 0 })?.Window;

    /// <summary>
    /// The backup leases the agents report, once each: agents sharing a repository see the same lease, and the holder's
    /// own answer (current) is preferred over another's reading of the repository.
    /// </summary>
    public static IReadOnlyList<BackupLeaseState> Leases(IReadOnlyList<ClusterMember> members) =>
        [.. members.SelectMany(m => m.Status?.BackupLeases ?? [])
            .GroupBy(l => (l.Repo, l.Holder, l.Since))
            .Select(g => g.OrderByDescending(l => l.HeldHere).ThenBy(l => l.ReadAgeSeconds).First())
            .OrderBy(l => l.Repo)];

    public static void WriteTable(Output output, IReadOnlyList<ClusterMember> members, DateTimeOffset now)
    {
        var primary = members.FirstOrDefault(m => m.IsPrimary);
        var rows = members.Select(member => member.Role is null
            ? [member.Agent.ToString(), Format.None, "UNREACHABLE", Format.None, Format.None, Format.None, Format.None, Format.None, Format.None, Format.None, member.Error ?? ""]
            : (string[])
            [
                member.Agent.ToString(),
                member.Name,
                Format.OrNone(member.Role.Role) + (member.Role.Timeline > 0 ? string.Create(CultureInfo.InvariantCulture, $" tl{member.Role.Timeline}") : ""),
                member.Role.PostgresUp ? "up" : "DOWN",
                DescribeLag(member, primary),
                member.Status?.Archive is { } archive ? StatusCommand.DescribeBacklog(archive) : Format.None,
                .. BackupTypes.Select(type => Latest(member, type) is { } b ? Format.Duration(now - b.Stopped.ToDateTimeOffset()) + " ago" : Format.None),
                member.Status?.RunningOperation is { } op ? StatusCommand.DescribeRunning(op) : Format.None,
                DescribeRepositories(member.Status),
            ]).ToList();
        TableOutput.Write(output, Columns, rows);
    }

    private static readonly TableColumn[] Columns =
    [
        new("AGENT"), new("MEMBER"), new("ROLE"), new("PG"), new("LAG"), new("ARCHIVE BACKLOG"),
        new("LAST FULL"), new("LAST DIFF"), new("LAST INCR"), new("RUNNING"), new("REPOSITORIES"),
    ];

    public static void WriteSummary(Output output, IReadOnlyList<ClusterMember> members, IReadOnlyList<string> problems, DateTimeOffset now)
    {
        var unreachable = members.Count(m => m.Role is null);
        output.Out.WriteLine();
        output.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cluster: {members.Count} agents, {members.Count(m => m.IsPrimary)} primary, {members.Count(m => m.IsStandby)} standby, " +
            $"{members.Count(m => m.Role is { PostgresUp: false })} PostgreSQL down, {unreachable} unreachable"));
        foreach (var window in Window(members)?.Windows ?? [])
        {
            if (window.EarliestTime is null)
            {
                output.Out.WriteLine($"recovery window {Format.Repo(window.Repo)}: none (no backup yet)");
                continue;
            }

            output.Out.WriteLine($"recovery window {Format.Repo(window.Repo)}: {Format.Time(window.EarliestTime)} UTC ({Format.OrNone(window.EarliestBackup)}) " +
                $"to {(window.LatestTime is null ? Format.OrNone(window.LatestWal) : Format.TimeWithAge(window.LatestTime, now))}");
        }

        foreach (var lease in Leases(members))
        {
            output.Out.WriteLine($"backup lease {Format.Repo(lease.Repo)}: {StatusCommand.DescribeLease(lease, now)}");
        }

        output.Out.WriteLine(problems.Count == 0 ? "health: ok" : "health: DEGRADED");
        foreach (var problem in problems)
        {
            output.Out.WriteLine("  ! " + problem);
        }
    }

    private static string DescribeLag(ClusterMember member, ClusterMember? primary)
    {
        if (!member.IsStandby)
        {
            return Format.None;
        }

        var bytes = LagBytes(member, primary);
        var seconds = member.Role!.HasReplayLagSeconds ? Format.Seconds(member.Role.ReplayLagSeconds) : "?";
        return (bytes is { } b ? Format.Size(b) : "?") + ", " + seconds;
    }

    private static string DescribeRepositories(AgentStatus? status) =>
        status?.Pgbackrest is not { } pgbackrest ? Format.None
        : string.Join(", ", pgbackrest.Repositories.Select(r => Format.Repo(r.Repo) + " " + (r.Reachability switch
        {
            null => "?",
            { Reachable: true } => "ok",
            var u => "UNREACHABLE(" + u.ErrorClass + ")",
        })));

    public static JsonObject ToJson(IReadOnlyList<ClusterMember> members, IReadOnlyList<string> problems, string? cluster, DateTimeOffset now)
    {
        var primary = members.FirstOrDefault(m => m.IsPrimary);
        var agents = new JsonArray();
        foreach (var member in members)
        {
            var node = new JsonObject
            {
                ["agent"] = member.Agent.ToString(),
                ["member"] = member.Name,
                ["reachable"] = member.Role is not null,
                ["error"] = member.Error,
                ["role"] = member.Role is null ? null : Output.ToNode(member.Role),
                ["lagBytes"] = LagBytes(member, primary),
            };
            if (member.Status is { } status)
            {
                node["archive"] = new JsonObject
                {
                    ["readyCount"] = status.Archive?.ReadyCount ?? 0,
                    ["oldestReadyAgeSeconds"] = status.Archive?.OldestReadyAgeSeconds ?? 0,
                };
                node["runningOperation"] = status.RunningOperation is null ? null : Output.ToNode(status.RunningOperation);
                node["backupLeases"] = new JsonArray([.. status.BackupLeases.Select(l => (JsonNode)Output.ToNode(l))]);
                node["repositories"] = new JsonArray([.. (status.Pgbackrest?.Repositories ?? []).Select(r => (JsonNode)new JsonObject
                {
                    ["repo"] = r.Repo,
                    ["type"] = r.Type,
                    ["reachable"] = r.Reachability?.Reachable,
                    ["errorClass"] = r.Reachability?.ErrorClass,
                })]);
            }

            var last = new JsonObject();
            foreach (var type in BackupTypes)
            {
                last[type] = Latest(member, type) is { } b
                    ? new JsonObject { ["label"] = b.Label, ["repo"] = b.Repo, ["stopped"] = b.Stopped.ToDateTimeOffset().ToString("O", CultureInfo.InvariantCulture), ["ageSeconds"] = (now - b.Stopped.ToDateTimeOffset()).TotalSeconds }
                    : null;
            }

            node["lastBackup"] = last;
            agents.Add((JsonNode)node);
        }

        return new JsonObject
        {
            ["cluster"] = cluster,
            ["agents"] = agents,
            ["summary"] = new JsonObject
            {
                ["agents"] = members.Count,
                ["primaries"] = members.Count(m => m.IsPrimary),
                ["standbys"] = members.Count(m => m.IsStandby),
                ["unreachable"] = members.Count(m => m.Role is null),
                ["degraded"] = problems.Count > 0,
                ["problems"] = new JsonArray([.. problems.Select(p => (JsonNode?)p)]),
                ["backupLeases"] = new JsonArray([.. Leases(members).Select(l => (JsonNode)Output.ToNode(l))]),
                ["recoveryWindows"] = Window(members) is { } w ? Output.ToNode(w)["windows"]?.DeepClone() : null,
            },
        };
    }

    private static DateTimeOffset ToDateTimeOffset(this Timestamp? timestamp) =>
        timestamp?.ToDateTimeOffset() ?? DateTimeOffset.MinValue;
}
