using Backrest.Agent.Core.Verify;

namespace Backrest.Agent.Core.Tests.Verify;

/// <summary>pgBackRest 2.45's verify text output, as it printed it here (it exits 0 in both cases).</summary>
public class VerifyReportTests
{
    private static readonly DateTimeOffset At = new(2026, 12, 5, 5, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Parse_AllValid_Ok()
    {
        const string output = """
            stanza: s
            status: ok
              archiveId: 15-1, total WAL checked: 2, total valid WAL: 2
                missing: 0, checksum invalid: 0, size invalid: 0, other: 0
              backup: 20261205-051509F, status: valid, total files checked: 964, total valid files: 964
                missing: 0, checksum invalid: 0, size invalid: 0, other: 0
            """;

        var report = VerifyReport.Parse(1, output, At);

        Assert.True(report.Ok);
        Assert.Empty(report.Findings);
        Assert.Equal(0, report.Errors);
        Assert.Equal("repo1: verify ok", report.Describe());
    }

    [Fact]
    public void Parse_BackupFileChecksumInvalid_NamesBackupAndCounter()
    {
        const string output = """
            stanza: s
            status: error
              archiveId: 15-1, total WAL checked: 5, total valid WAL: 4
                missing: 1
              backup: 20261205-051509F, status: invalid, total files checked: 964, total valid files: 963
                checksum invalid: 1
            """;

        var report = VerifyReport.Parse(2, output, At);

        Assert.False(report.Ok);
        Assert.Equal(2, report.Errors);
        Assert.Equal([("archive", "15-1", 1L, "missing: 1"), ("backup", "20261205-051509F", 1L, "checksum invalid: 1")],
            report.Findings.Select(f => (f.Kind, f.Name, f.Invalid, f.Details)));
        Assert.Contains("backup 20261205-051509F: 1 of 964 files invalid (checksum invalid: 1)", report.Describe());
        Assert.Contains("Take a new full backup", report.Describe());
    }

    [Fact]
    public void Parse_NoStatusLine_NotOkWithError()
    {
        var report = VerifyReport.Parse(1, "", At);

        Assert.False(report.Ok);
        Assert.Contains("no status line", report.Describe());
    }

    [Fact]
    public void Parse_StatusErrorWithoutDetails_NotOk()
    {
        var report = VerifyReport.Parse(1, "stanza: s\nstatus: error\n  job errors: 2\n", At);

        Assert.False(report.Ok);
        Assert.Equal(2, report.Errors);
    }

    [Fact]
    public void ArchiveHeld_VerifyFoundNoArchive_NotOkNamesTheNewestSegment()
    {
        // What 2.45 printed for an s3rver repository: its delimited listing hides the archive id, so no WAL is checked.
        const string output = """
            stanza: s
            status: ok
              archiveId: none found
              backup: 20261205-051509F, status: valid, total files checked: 964, total valid files: 964
                missing: 0, checksum invalid: 0, size invalid: 0, other: 0
            """;

        var parsed = VerifyReport.Parse(2, output, At);
        var report = parsed.WithArchiveHeld("000000010000000000000007");

        Assert.True(parsed.Ok);
        Assert.Equal(0, parsed.WalChecked);
        Assert.False(report.Ok);
        Assert.Equal(0, report.Errors);
        Assert.StartsWith("repo2: verify checked no WAL segment, yet the archive holds segments up to 000000010000000000000007", report.Describe());
        // An empty archive is nothing to check.
        Assert.True(parsed.WithArchiveHeld(null).Ok);
    }

    [Fact]
    public void ArchiveHeld_WalChecked_Unchanged()
    {
        const string output = """
            stanza: s
            status: ok
              archiveId: 15-1, total WAL checked: 2, total valid WAL: 2
                missing: 0, checksum invalid: 0, size invalid: 0, other: 0
              archiveId: 15-2, total WAL checked: 1, total valid WAL: 1
                missing: 0, checksum invalid: 0, size invalid: 0, other: 0
            """;

        var report = VerifyReport.Parse(1, output, At);

        Assert.Equal(3, report.WalChecked);
        Assert.Same(report, report.WithArchiveHeld("000000020000000000000009"));
    }
}
