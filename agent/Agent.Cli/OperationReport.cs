using Backrest.Agent.V1;

namespace Backrest.Agent.Cli;

/// <summary>Human text for an operation: the full record (<c>operation ID</c>) and the summary after <c>--wait</c>.</summary>
internal static class OperationReport
{
    public static bool IsFinal(Operation operation) =>
        operation.State is OperationState.Succeeded or OperationState.Failed or OperationState.Cancelled;

    public static string Kind(Operation operation) => operation.Kind switch
    {
        OperationKind.Backup => "backup",
        OperationKind.Restore => "restore",
        OperationKind.Expire => "expire",
        OperationKind.Delete => "delete",
        OperationKind.Verify => "verify",
        OperationKind.Drill => "drill",
        _ => "operation",
    };

    public static string State(OperationState state) => state switch
    {
        OperationState.Running => "running",
        OperationState.Succeeded => "succeeded",
        OperationState.Failed => "failed",
        OperationState.Cancelled => "cancelled",
        OperationState.Queued => "queued",
        _ => "unknown",
    };

    /// <summary>"backup 3f2a on 10.0.0.5:7480: full backup to repo1".</summary>
    public static string Header(AgentAddress agent, Operation operation) =>
        $"{Kind(operation)} {operation.Id} on {agent}: {Format.OrNone(operation.Description)}";

    public static string FollowHint(AgentAddress agent, Operation operation) =>
        $"backrestctl --agent {agent} operation {operation.Id} --wait";

    /// <summary>The whole record; the state is a fact here, so this never decides the exit code.</summary>
    public static void WriteDetails(TextWriter writer, AgentAddress agent, Operation operation)
    {
        var block = new TextBlock(writer);
        block.Line($"operation {operation.Id} on {agent}");
        block.Field("kind", Kind(operation));
        block.Field("description", Format.OrNone(operation.Description));
        var state = State(operation.State);
        if (operation.State == OperationState.Running)
        {
            state += $", {Format.Percent(operation.Percent)}" + (operation.Phase.Length > 0 ? " " + operation.Phase : "");
        }

        block.Field("state", state);
        block.Field("trigger", operation.Trigger == OperationTrigger.Schedule ? "schedule" : "manual");
        if (operation.BackupLabel.Length > 0)
        {
            block.Field("backup", operation.BackupLabel);
        }

        block.Field("started", Format.Time(operation.Started) + (operation.Started is null ? "" : " UTC"));
        block.Field("finished", Format.Time(operation.Finished) + (operation.Finished is null ? "" : " UTC"));
        if (operation.Finished is not null)
        {
            block.Field("took", Format.Duration(operation.Started, operation.Finished));
        }

        WriteResult(block, operation);
        WriteError(block, operation.Error);
        WriteWarnings(block, operation);
    }

    /// <summary>After following an operation to its end: success on stdout (exit 0), failure on stderr (exit 1).</summary>
    public static int WriteSummary(Output output, Operation operation)
    {
        var kind = Kind(operation);
        var took = Format.Duration(operation.Started, operation.Finished);
        if (operation.State == OperationState.Succeeded)
        {
            var block = new TextBlock(output.Out);
            block.Line($"{kind} succeeded in {took}");
            WriteResult(block, operation);
            WriteWarnings(block, operation);
            // A verify that ran to its end but found damage is a failed check for scripts.
            return operation.Verify is { Ok: false } ? ExitCodes.Failure : ExitCodes.Success;
        }

        output.Fail($"{kind} {State(operation.State)} after {took}"
            + (operation.Error is { } error ? $": {Format.OrNone(error.Code)}: {ForPeople.Text(error.Message)}" : ""));
        var errorBlock = new TextBlock(output.Error);
        if (operation.Error is { } details)
        {
            if (details.Hint.Length > 0)
            {
                errorBlock.Field("hint", ForPeople.Text(details.Hint));
            }

            if (details.PgbackrestCode != 0)
            {
                errorBlock.Field("pgBackRest code", details.PgbackrestCode.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        WriteWarnings(errorBlock, operation);
        return ExitCodes.Failure;
    }

    private static void WriteResult(TextBlock block, Operation operation)
    {
        if (operation.Backup is { } backup)
        {
            var type = Format.OrNone(backup.Type);
            if (backup.RequestedType.Length > 0 && backup.RequestedType != backup.Type)
            {
                type += $" (requested {backup.RequestedType})";
            }

            block.Field("label", Format.OrNone(backup.Backup?.Label));
            block.Field("type", type);
            block.Field("repository", Format.Repo(backup.Repo));
            if (backup.Backup is { } taken)
            {
                if (taken.Prior.Length > 0)
                {
                    block.Field("prior", taken.Prior);
                }

                block.Field("database size", $"{Format.SizeOrNone(taken.DatabaseSize)} (changed {Format.SizeOrNone(taken.DatabaseDelta)})");
                block.Field("repo size", $"{(taken.HasRepositorySize ? Format.SizeOrNone(taken.RepositorySize) : "not reported (block incremental)")} (added {Format.SizeOrNone(taken.RepositoryDelta)})");
                block.Field("WAL", $"{Format.OrNone(taken.WalStart)}..{Format.OrNone(taken.WalStop)}");
                if (taken.PageChecksumError)
                {
                    block.Field("checksums", "page checksum errors found: see pgbackrest info --set " + taken.Label);
                }
            }
        }

        if (operation.Drill is { } drill)
        {
            block.Field("repository", Format.Repo(drill.Repo));
            block.Field("recovery time", $"{drill.RecoverySeconds:F1} s (restore {drill.RestoreSeconds:F1} s, replay {drill.ReplaySeconds:F1} s)");
            block.Field("recovered to", $"{Format.OrNone(drill.RecoveredLsn)} ({Format.OrNone(drill.RecoveredWal)})" +
                (drill.RecoveredTime is null ? "" : $", last transaction {Format.Time(drill.RecoveredTime)} UTC"));
            block.Field("newest archived", Format.OrNone(drill.NewestArchivedWal) + (drill.Shortfall ? "  SHORTFALL: recovery stopped before it" : ""));
            block.Field("check", string.Join(", ", drill.Check));
        }

        foreach (var report in operation.Verify?.Repositories ?? [])
        {
            block.Field(Format.Repo(report.Repo), report.Ok ? "ok" : report.Description);
        }

        if (operation.Restore is { } restore)
        {
            block.Field("backup", Format.OrNone(restore.BackupLabel) + (restore.Repo > 0 ? $" from {Format.Repo(restore.Repo)}" : ""));
            block.Field("data directory", Format.OrNone(restore.DataDirectory));
            if (restore.NextStep.Length > 0)
            {
                block.Field("next step", restore.NextStep);
            }
        }
    }

    private static void WriteError(TextBlock block, OperationError? error)
    {
        if (error is null)
        {
            return;
        }

        block.Field("error", $"{Format.OrNone(error.Code)}: {ForPeople.Text(error.Message)}");
        if (error.Hint.Length > 0)
        {
            block.Field("hint", ForPeople.Text(error.Hint));
        }

        if (error.PgbackrestCode != 0)
        {
            block.Field("pgBackRest code", error.PgbackrestCode.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    private static void WriteWarnings(TextBlock block, Operation operation)
    {
        foreach (var warning in operation.Warnings)
        {
            block.Field("warning", warning);
        }
    }
}
