using Backrest.Agent.Core.PgBackRest;

namespace Backrest.Agent.Core.Tests.PgBackRest;

/// <summary>Lines as pgBackRest 2.45 prints them with --log-level-console=detail (captured from the integration tests).</summary>
public class ConsoleProgressTests
{
    [Theory]
    [InlineData("2026-12-04 19:12:37.393 P00   INFO: new backup label = 20261204-191234F", "20261204-191234F")]
    [InlineData("2026-12-04 19:12:39.749 P00   INFO: new backup label = 20261204-191234F_20261204-191238I", "20261204-191234F_20261204-191238I")]
    [InlineData("2026-12-04 19:12:37.411 P00   INFO: full backup size = 52MB, file total = 977", null)]
    [InlineData("2026-12-04 19:12:02.101 P01 DETAIL: backup file /tmp/x/new backup label = 20261204-191158F (8KB, 3.42%) checksum 0", null)]
    public void ParseNewBackupLabel_ConsoleLine_LabelOnlyFromItsOwnLine(string line, string? expected) =>
        Assert.Equal(expected, ConsoleProgress.ParseNewBackupLabel(line));

    [Theory]
    [InlineData("2026-12-04 19:13:40.004 P00   INFO: repo2: restore backup set 20261204-191158F, recovery will start at 2026-12-04 19:11:58",
        2, "20261204-191158F")]
    [InlineData("2026-12-04 19:13:40.004 P00   INFO: repo1: restore backup set 20261204-191158F_20261204-191205I, recovery will start at 2026-12-04 19:12:05",
        1, "20261204-191158F_20261204-191205I")]
    public void ParseRestoredSet_ConsoleLine_RepositoryAndLabel(string line, int repo, string label) =>
        Assert.Equal((repo, label), ConsoleProgress.ParseRestoredSet(line));

    [Fact]
    public void ParseRestoredSet_OtherLine_Null() =>
        Assert.Null(ConsoleProgress.ParseRestoredSet("2026-12-04 19:13:40.010 P00   INFO: remove invalid files/links/paths from '/tmp/x'"));
}
