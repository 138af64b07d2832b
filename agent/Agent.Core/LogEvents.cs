namespace Backrest.Agent.Core;

/// <summary>
/// Every [LoggerMessage] event id of the agent, in one place: log-based alerting keys on them, so an id is never reused
/// for another message and never changes (LogEventsTests checks that no two messages share one). Hundreds by feature.
/// </summary>
public static class LogEvents
{
    // Start-up (Agent.Server).
    public const int AgentReady = 1;
    public const int EffectiveSetting = 2;
    public const int SettingWarning = 3;
    public const int ReapingOrphan = 10;

    // pgBackRest runs.
    public const int PgBackRestCommandFinished = 100;

    // Operations.
    public const int OperationStarted = 200;
    public const int OperationSucceeded = 201;
    public const int OperationFailed = 202;
    public const int OperationQueued = 203;
    public const int QueuedOperationDropped = 204;
    public const int OperationCancelRequested = 205;
    public const int WaitingForOperation = 206;
    public const int StoppingOperation = 207;
    public const int OperationInterruptedByRestart = 208;
    public const int OperationDidNotStop = 209;

    // Schedules.
    public const int ScheduleConfigured = 250;
    public const int ScheduleFired = 251;
    public const int ScheduleSkippedNotPrimary = 252;
    public const int ScheduleFireFailed = 253;
    public const int ScheduleCatchingUp = 254;

    // WAL archiving.
    public const int ArchivePushFailed = 300;
    public const int ArchiveSegmentDropped = 301;

    // PostgreSQL.
    public const int ArchiverWoken = 400;

    // The gRPC server.
    public const int UnhandledRpcError = 500;

    // Access control (Agent.Server/Security).
    public const int AuditCall = 600;
    public const int CallRefused = 601;
    public const int ArchiveSocketPeerRefused = 602;

    // Repositories and the status cache.
    public const int RepositoryUnreachable = 700;
    public const int RepositoryReachableAgain = 701;
    public const int RepositoryInfoFailed = 702;

    // The cluster: backup leases in the repositories (Cluster/).
    public const int BackupLeaseAcquired = 800;
    public const int BackupLeaseTakenOver = 801;
    public const int BackupLeaseReleased = 802;
    public const int BackupLeaseRenewFailed = 803;
    public const int BackupLeaseLost = 804;
    public const int TlsServerStarting = 810;
    public const int TlsServerExited = 811;

    // Recoverability: archive continuity, verify, restore drills.
    public const int ArchiveGapFound = 900;
    public const int ArchiveGapClosed = 901;
    public const int ContinuityScanFailed = 902;
    public const int RestoreRecoveryShortfall = 903;
    public const int RestoreRecoveryReached = 904;
    public const int RestoreRecoveryWatchFailed = 905;

    // Restore drills' clean-up after an agent that stopped during one (Drills/).
    public const int DrillLeftoverRemoving = 1500;
    public const int DrillLeftoverNotRemoved = 1501;

    // Metrics: background samples a scrape reads (Archive/WalArchiveSampler).
    public const int WalArchiveSampleFailed = 1300;

    // One cluster, many agents (continued).
    public const int CheckpointAfterPromotion = 1400;
    public const int CheckpointAfterPromotionFailed = 1401;
}
