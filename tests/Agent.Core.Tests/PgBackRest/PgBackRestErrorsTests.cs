using Backrest.Agent.Core.PgBackRest;

namespace Backrest.Agent.Core.Tests.PgBackRest;

public class PgBackRestErrorsTests
{
    [Theory]
    [InlineData(50, AgentErrorKind.Aborted)]
    [InlineData(38, AgentErrorKind.FailedPrecondition)]
    [InlineData(103, AgentErrorKind.Unavailable)]
    [InlineData(49, AgentErrorKind.Unavailable)]
    [InlineData(56, AgentErrorKind.Unavailable)]
    [InlineData(82, AgentErrorKind.DeadlineExceeded)]
    [InlineData(104, AgentErrorKind.Aborted)]
    [InlineData(75, AgentErrorKind.NotFound)]
    [InlineData(31, AgentErrorKind.InvalidArgument)]
    [InlineData(45, AgentErrorKind.DataLoss)]
    [InlineData(63, AgentErrorKind.Cancelled)]
    [InlineData(200, AgentErrorKind.Unknown)]
    public void KindOf_MapsExitCodes(int code, AgentErrorKind expected) => Assert.Equal(expected, PgBackRestErrors.KindOf(code));

    [Theory]
    [InlineData(42, "ERROR: [042]: timeout after 10000ms waiting for read from '/repo/archive/demo/x'", AgentErrorKind.DeadlineExceeded)]
    [InlineData(64, "ERROR: [064]: timeout after 10000ms waiting for write to '/repo/x'", AgentErrorKind.DeadlineExceeded)]
    [InlineData(42, "ERROR: [042]: unable to read '/repo/x': Permission denied", AgentErrorKind.FailedPrecondition)]
    [InlineData(41, "ERROR: [041]: unable to open file '/repo/x' for read: No such file or directory", AgentErrorKind.FailedPrecondition)]
    public void FromFailure_FileErrors_TimeoutIsDeadlineOtherwiseFailedPrecondition(int code, string stderr, AgentErrorKind expected) =>
        Assert.Equal(expected, PgBackRestErrors.FromFailure("archive-get", code, stderr).Kind);

    [Fact]
    public void FromFailure_LockError_KeepsMessageAndHintAndAddsNextStep()
    {
        const string stderr = """
            ERROR: [050]: unable to acquire lock on file '/tmp/x/lock/demo-backup.lock': Resource temporarily unavailable
                   HINT: is another pgBackRest process running?
            """;
        var error = PgBackRestErrors.FromFailure("backup", 50, stderr);
        Assert.Equal(AgentErrorKind.Aborted, error.Kind);
        Assert.Equal(50, error.PgBackRestCode);
        Assert.Equal("pgbackrest backup failed [50]: unable to acquire lock on file '/tmp/x/lock/demo-backup.lock': Resource temporarily unavailable", error.Message);
        Assert.StartsWith("is another pgBackRest process running? Another pgBackRest command holds the lock", error.Hint);
    }

    [Fact]
    public void ParseError_MultiLineMessage_JoinsContinuationAndHints()
    {
        const string stderr = """
            WARN: something first
            ERROR: [103]: unable to find a valid repository:
                   repo1: [FileMissingError] unable to open missing file '/nope/archive/demo/archive.info' for read
                   HINT: archive.info cannot be opened but is required to push/get WAL segments.
                   HINT: is archive_command configured correctly in postgresql.conf?
            """;
        var (message, hint) = PgBackRestErrors.ParseError(stderr);
        Assert.Equal("unable to find a valid repository: repo1: [FileMissingError] unable to open missing file '/nope/archive/demo/archive.info' for read", message);
        Assert.Equal("archive.info cannot be opened but is required to push/get WAL segments. is archive_command configured correctly in postgresql.conf?", hint);
    }

    [Fact]
    public void Warnings_CollectsEachWarnWithContinuation()
    {
        const string stderr = """
            WARN: option 'repo1-retention-full' is not set, the repository may run out of space
                  HINT: to retain full backups indefinitely (without warning), set option 'repo1-retention-full' to the maximum.
            WARN: no prior backup exists, incr backup has been changed to full
            """;
        var warnings = PgBackRestErrors.Warnings(stderr).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.EndsWith("set option 'repo1-retention-full' to the maximum.", warnings[0]);
        Assert.Equal("no prior backup exists, incr backup has been changed to full", warnings[1]);
    }

    [Theory]
    [InlineData("2026-11-25 12:18:51.223 P01 DETAIL: backup file /d/base/5/1255 (768KB, 3.42%) checksum adb7", 3.42)]
    [InlineData("2026-11-25 12:18:51.223 P02 DETAIL: restore file /d/base/1/2608 (456KB, 61%) checksum 11", 61.0)]
    [InlineData("2026-11-25 12:18:51.223 P00   INFO: backup start archive = 000000010000000000000002", null)]
    public void ConsoleProgress_ParsesPercent(string line, double? expected) => Assert.Equal(expected, ConsoleProgress.ParsePercent(line));
}
