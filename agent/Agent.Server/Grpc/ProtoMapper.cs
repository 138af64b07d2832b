using Backrest.Agent.Core;
using Backrest.Agent.Core.Backups;
using Backrest.Agent.Core.Continuity;
using Backrest.Agent.Core.Drills;
using Backrest.Agent.Core.Operations;
using Backrest.Agent.Core.PgBackRest;
using Backrest.Agent.Core.Repositories;
using Backrest.Agent.Core.Restore;
using Backrest.Agent.Core.Verify;
using Google.Protobuf.WellKnownTypes;
using V1 = Backrest.Agent.V1;

namespace Backrest.Agent.Server.Grpc;

/// <summary>Core records to protobuf messages, and nothing else.</summary>
internal static class ProtoMapper
{
    public static V1.Operation ToProto(OperationSnapshot s)
    {
        var operation = new V1.Operation
        {
            Id = s.Id,
            Kind = s.Kind switch
            {
                OperationKind.Backup => V1.OperationKind.Backup,
                OperationKind.Restore => V1.OperationKind.Restore,
                OperationKind.Expire => V1.OperationKind.Expire,
                OperationKind.Delete => V1.OperationKind.Delete,
                OperationKind.Verify => V1.OperationKind.Verify,
                OperationKind.Drill => V1.OperationKind.Drill,
                _ => V1.OperationKind.Unspecified,
            },
            State = s.State switch
            {
                OperationState.Running => V1.OperationState.Running,
                OperationState.Succeeded => V1.OperationState.Succeeded,
                OperationState.Failed => V1.OperationState.Failed,
                OperationState.Cancelled => V1.OperationState.Cancelled,
                OperationState.Queued => V1.OperationState.Queued,
                _ => V1.OperationState.Unspecified,
            },
            Trigger = s.Trigger == OperationTrigger.Schedule ? V1.OperationTrigger.Schedule : V1.OperationTrigger.Manual,
            BackupLabel = s.BackupLabel ?? s.Result?.BackupLabel ?? "",
            Description = s.Description,
            Started = Timestamp.FromDateTimeOffset(s.Started),
            Percent = s.Percent,
            Phase = s.Phase,
        };
        operation.Warnings.AddRange(s.Warnings);
        if (s.Finished is { } finished)
        {
            operation.Finished = Timestamp.FromDateTimeOffset(finished);
        }

        if (s.Error is { } error)
        {
            operation.Error = new V1.OperationError
            {
                Code = V1.StatusCodeNames.Name(ErrorInterceptor.ToStatusCode(error.Kind)),
                Message = error.Message,
                Hint = error.Hint ?? "",
                PgbackrestCode = error.PgBackRestCode,
            };
        }

        switch (s.Result)
        {
            case DrillOutcome drill:
                operation.Drill = new V1.DrillResult
                {
                    Repo = drill.Repo,
                    BackupLabel = drill.Backup,
                    RestoreSeconds = drill.Restore.TotalSeconds,
                    ReplaySeconds = drill.Replay.TotalSeconds,
                    RecoverySeconds = drill.RecoveryTime.TotalSeconds,
                    RecoveredLsn = drill.RecoveredLsn ?? "",
                    RecoveredWal = drill.RecoveredWal ?? "",
                    RecoveredTime = ToTimestamp(drill.RecoveredTime),
                    NewestArchivedWal = drill.NewestArchivedWal ?? "",
                    Shortfall = drill.Shortfall,
                    Check = { drill.Check },
                };
                break;
            case VerifyOutcome verify:
                operation.Verify = new V1.VerifyResult { Ok = verify.Ok, Repositories = { verify.Repositories.Select(ToProto) } };
                break;
            case BackupOutcome backup:
                operation.Backup = new V1.BackupResult
                {
                    RequestedType = backup.RequestedType,
                    Type = backup.Type,
                    Repo = backup.Repo,
                    Backup = backup.Backup is null ? null : ToProto(backup.Backup),
                };
                break;
            case RestoreOutcome restore:
                operation.Restore = new V1.RestoreResult
                {
                    DataDirectory = restore.DataDirectory,
                    BackupLabel = restore.BackupLabel,
                    Repo = restore.Repo,
                    NextStep = restore.NextStep,
                };
                break;
        }

        return operation;
    }

    public static V1.Backup ToProto(BackupInfo b)
    {
        var backup = new V1.Backup
        {
            Label = b.Label,
            Type = b.Type,
            Prior = b.Prior ?? "",
            Repo = b.RepoKey,
            Started = Timestamp.FromDateTimeOffset(b.Start),
            Stopped = Timestamp.FromDateTimeOffset(b.Stop),
            DatabaseSize = b.DatabaseSize,
            DatabaseDelta = b.DatabaseDelta,
            RepositoryDelta = b.RepositoryDelta ?? 0,
            WalStart = b.ArchiveStart ?? "",
            WalStop = b.ArchiveStop ?? "",
            LsnStart = b.LsnStart ?? "",
            LsnStop = b.LsnStop ?? "",
            PageChecksumError = b.Error ?? false,
        };
        if (b.RepositorySize is { } repositorySize)
        {
            backup.RepositorySize = repositorySize;
        }

        backup.References.AddRange(b.References);
        return backup;
    }

    public static V1.AgentStatus ToProto(AgentStatus s, string agentVersion)
    {
        var status = new V1.AgentStatus
        {
            Stanza = s.Stanza,
            AgentVersion = agentVersion,
            Postgres = new V1.PostgresStatus
            {
                Reachable = s.Postgres.Reachable,
                Role = !s.Postgres.Reachable ? "" : s.Postgres.InRecovery ? "standby" : "primary",
                Version = s.Postgres.Version,
                DataDirectory = s.DataDirectory,
                Error = s.Postgres.Error ?? "",
                ReadAgeSeconds = s.PostgresReadAt is { } postgresReadAt ? Math.Max(0, (s.Now - postgresReadAt).TotalSeconds) : 0,
            },
            Pgbackrest = new V1.PgBackRestStatus
            {
                Version = s.Runtime.Capabilities.Version.ToString(),
            },
            RunningOperation = s.Running is null ? null : ToProto(s.Running),
            Archive = new V1.ArchiveStatus
            {
                LastArchivedWal = s.Archive.LastArchivedWal ?? "",
                LastArchivedTime = ToTimestamp(s.Archive.LastArchivedTime),
                ReadyCount = s.Ready.Count,
                ReadyBytes = s.Ready.Bytes,
                OldestReadyAgeSeconds = s.Ready.OldestAge.TotalSeconds,
                DroppedSegments = s.Archive.DroppedSegments,
            },
        };

        status.Archive.BlockingRepos.AddRange(s.Archive.BlockingRepos);
        if (s.WalVolume.FreeBytes is { } free)
        {
            status.Archive.WalVolumeFreeBytes = free;
        }

        if (s.WalVolume.HoursUntilFull is { } hours)
        {
            status.Archive.WalVolumeFullHours = hours;
        }

        var snapshot = s.Repositories;
        status.Pgbackrest.Error = snapshot.InfoError ?? "";
        status.Pgbackrest.InfoTime = ToTimestamp(snapshot.InfoReadAt);
        if (snapshot.InfoReadAt is { } readAt)
        {
            status.Pgbackrest.InfoAgeSeconds = (s.Now - readAt).TotalSeconds;
        }

        if (snapshot.Info is { } info)
        {
            status.Pgbackrest.StanzaStatusCode = info.StatusCode;
            status.Pgbackrest.StanzaStatusMessage = info.StatusMessage;
            status.Pgbackrest.BackupLockHeld = info.BackupLock.Held;
        }

        // Every configured repository, read or not, so a client can name the one that is dead.
        status.Pgbackrest.Repositories.AddRange(snapshot.Repositories.Select(r =>
        {
            var own = r.Read.Info?.Repositories.FirstOrDefault(x => x.Key == r.Repo);
            return new V1.RepositoryStatus
            {
                Repo = r.Repo,
                Type = r.Type,
                StatusCode = own?.StatusCode ?? r.Read.Info?.StatusCode ?? 0,
                StatusMessage = own?.StatusMessage ?? r.Read.Info?.StatusMessage ?? "not read yet",
                Reachability = r.Probe is { } probe ? ToProto(probe) : null,
                InfoTime = ToTimestamp(r.Read.ReadAt),
                InfoError = r.Read.Error ?? "",
                ArchiveContinuity = r.Continuity is { } continuity ? ToProto(continuity) : null,
                ArchiveContinuityError = r.ContinuityError ?? "",
                Verify = s.Verify.TryGetValue(r.Repo, out var verify) ? ToProto(verify) : null,
            };
        }));
        // A gap is silent data loss for a restore to latest: say so where operators look first.
        status.Warnings.AddRange(snapshot.Repositories.Where(r => r.Continuity is { Continuous: false })
            .Select(r => $"repo{r.Repo}: {r.Continuity!.Describe()}"));
        status.Warnings.AddRange(s.Verify.Values.Where(v => !v.Ok).OrderBy(v => v.Repo).Select(v => v.Describe()));
        status.BackupLeases.AddRange(s.BackupLeases.Select(l => new V1.BackupLeaseState
        {
            Repo = l.Record.Repo,
            Holder = l.Record.Holder,
            Operation = l.Record.Description,
            OperationId = l.Record.OperationId ?? "",
            Since = ToTimestamp(l.Record.Acquired),
            Expires = ToTimestamp(l.Record.Expires),
            HeldHere = l.HeldHere,
            ReadAgeSeconds = Math.Max(0, (s.Now - l.ReadAt).TotalSeconds),
        }));
        if (s.LastRecoveryEnd is { } end)
        {
            status.LastRecoveryEnd = new V1.RecoveryEnd
            {
                OperationId = end.OperationId,
                DataDirectory = end.DataDirectory,
                Repo = end.Repo,
                Lsn = end.Lsn,
                Segment = end.Segment,
                NewestArchivedWal = end.NewestArchivedWal ?? "",
                Shortfall = end.Shortfall,
                SeenTime = ToTimestamp(end.SeenAt),
                Description = end.Describe(),
            };
            if (end.Shortfall)
            {
                status.Warnings.Add(end.Describe());
            }
        }

        status.Archive.Repositories.AddRange(s.Archive.Repositories.Select(r => new V1.RepositoryArchiveStats
        {
            Repo = r.Repo,
            Pushed = r.Pushed,
            Failed = r.Failed,
            Bytes = r.Bytes,
            LastError = r.LastError ?? "",
            LastErrorTime = ToTimestamp(r.LastErrorTime),
            LastSuccessTime = ToTimestamp(r.LastSuccessTime),
        }));

        if (s.Archiver is { } archiver)
        {
            status.Archive.PgStatArchiver = new V1.PgStatArchiver
            {
                ArchivedCount = archiver.ArchivedCount,
                FailedCount = archiver.FailedCount,
                LastArchivedWal = archiver.LastArchivedWal ?? "",
                LastArchivedTime = ToTimestamp(archiver.LastArchivedTime),
                LastFailedWal = archiver.LastFailedWal ?? "",
                LastFailedTime = ToTimestamp(archiver.LastFailedTime),
            };
        }

        status.Settings.AddRange(s.Runtime.Settings.All.Select(e => new V1.EffectiveSetting
        {
            Key = e.Key,
            Value = e.Value,
            Source = e.Source.ToString().ToLowerInvariant(),
        }));
        status.Warnings.AddRange(s.Runtime.Settings.Warnings);
        status.Retention.AddRange(s.Retention.Select(r => new V1.RepositoryRetention { Repo = r.Repo, Configured = r.Configured, Description = r.Describe() }));
        return status;
    }

    public static V1.Schedule ToProto(Core.Schedules.ScheduleStatus s) => new()
    {
        Repo = s.Schedule.Repo,
        Type = s.Schedule.Type,
        Cron = s.Schedule.Cron,
        TimeZone = s.Schedule.TimeZone.Id,
        NextRun = ToTimestamp(s.Next),
        Last = s.Last is null ? null : ToProto(s.Last),
    };

    public static V1.RepositoryReachability ToProto(ProbeResult probe)
    {
        var reply = new V1.RepositoryReachability
        {
            Reachable = probe.Reachable,
            ErrorClass = probe.ErrorClass is { } errorClass ? ProbeResult.Name(errorClass) : "",
            Message = probe.Message ?? "",
            LatencySeconds = probe.Latency.TotalSeconds,
            CheckedTime = ToTimestamp(probe.CheckedAt),
        };
        if (probe.FreeBytes is { } free)
        {
            reply.FreeBytes = free;
        }

        return reply;
    }

    public static V1.RecoveryWindow ToProto(RecoveryWindow w)
    {
        var window = new V1.RecoveryWindow
        {
            Repo = w.Repo,
            EarliestTime = ToTimestamp(w.EarliestTime),
            EarliestBackup = w.EarliestBackup ?? "",
            EarliestLsn = w.EarliestLsn ?? "",
            LatestWal = w.LatestWal ?? "",
            LatestTime = ToTimestamp(w.LatestTime),
            Gap = w.Gap is { } gap ? ToProto(gap) : null,
        };
        if (w.MissingSegments is { } missing)
        {
            window.MissingSegments = missing;
        }

        return window;
    }

    public static V1.ArchiveContinuity ToProto(ArchiveContinuity c) => new()
    {
        ArchiveId = c.ArchiveId,
        From = c.From ?? "",
        Newest = c.Newest ?? "",
        LastContiguous = c.LastContiguous ?? "",
        MissingSegments = c.MissingSegments,
        Gaps = { c.Gaps.Select(ToProto) },
        Problems = { c.Problems },
        CheckedTime = ToTimestamp(c.CheckedAt),
        Description = c.Describe(),
    };

    public static V1.VerifyReport ToProto(VerifyReport r) => new()
    {
        Repo = r.Repo,
        Ok = r.Ok,
        Errors = r.Errors,
        Findings = { r.Findings.Select(f => new V1.VerifyFinding { Kind = f.Kind, Name = f.Name, Checked = f.Checked, Valid = f.Valid, Details = f.Details }) },
        Error = r.Error ?? "",
        Finished = ToTimestamp(r.Finished),
        Description = r.Describe(),
    };

    public static V1.ArchiveGap ToProto(ArchiveGap g) => new()
    {
        FirstMissing = g.FirstMissing,
        LastMissing = g.LastMissing,
        Count = g.Count,
        After = g.After ?? "",
        Since = ToTimestamp(g.Since),
    };

    public static RestoreRequest FromProto(V1.StartRestoreRequest r) => new()
    {
        TargetType = r.TargetType,
        Target = r.Target,
        Set = r.Set,
        Repo = r.Repo,
        DataDirectory = r.DataDirectory,
        Delta = r.HasDelta ? r.Delta : null,
        TargetAction = r.TargetAction,
        TargetExclusive = r.TargetExclusive,
        TargetTimeline = r.TargetTimeline,
        Port = r.Port,
        ArchiveModeOn = r.ArchiveModeOn,
    };

    public static Timestamp? ToTimestamp(DateTimeOffset? value) => value is { } v ? Timestamp.FromDateTimeOffset(v) : null;
}
