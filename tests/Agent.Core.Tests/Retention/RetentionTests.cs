using Backrest.Agent.Core.Configuration;
using Backrest.Agent.Core.Retention;

namespace Backrest.Agent.Core.Tests.Retention;

public sealed class RetentionTests
{
    [Fact]
    public void Parse_ExpireDryRunOutputOf245_BackupSetsAndArchiveRanges()
    {
        // Lines pgBackRest 2.45 printed here (expire --set --dry-run, then a retention dry run).
        string[] lines =
        [
            "2026-12-04 20:12:57.709 P00   INFO: [DRY-RUN] repo1: expire adhoc backup set 20261204-191034F_20261204-191038D, 20261204-191034F_20261204-191041I",
            "2026-12-04 20:12:57.709 P00   INFO: [DRY-RUN] repo1: remove expired backup 20261204-191034F_20261204-191041I",
            "2026-12-04 20:12:57.724 P00 DETAIL: [DRY-RUN] repo1: 15-1 archive retention on backup 20261204-191034F, start = 000000010000000000000003",
            "2026-12-04 20:12:57.724 P00   INFO: [DRY-RUN] repo2: 15-1 remove archive, start = 000000010000000000000001, stop = 000000010000000000000002",
            "2026-12-04 20:12:57.709 P00   INFO: repo1: expire time-based backup set 20261201-010000F",
        ];

        var outcome = RetentionService.Parse(dryRun: true, lines);

        Assert.Equal(2, outcome.Backups.Count);
        Assert.Equal(["20261204-191034F_20261204-191038D", "20261204-191034F_20261204-191041I"], outcome.Backups[0].Labels);
        Assert.Equal(["20261201-010000F"], outcome.Backups[1].Labels);
        Assert.Equal(new ExpiredArchive(2, "15-1", "000000010000000000000001", "000000010000000000000002"), Assert.Single(outcome.Archive));
    }

    [Fact]
    public void ConfigLinesAndValidate_TimeRetentionWithArchive_RenderedAndBadTypesNamed()
    {
        var repo = new RepositoryOptions { RetentionFull = 14, RetentionFullType = "time", RetentionDiff = 3, RetentionArchive = 2, RetentionArchiveType = "diff" };
        Assert.Equal(
            [("repo1-retention-full", "14"), ("repo1-retention-full-type", "time"), ("repo1-retention-diff", "3"),
             ("repo1-retention-archive", "2"), ("repo1-retention-archive-type", "diff")],
            RetentionPolicy.ConfigLines(1, repo));

        var errors = new List<string>();
        RetentionPolicy.Validate(errors, "Agent:Repositories:0", new RepositoryOptions { RetentionFullType = "days", RetentionArchiveType = "incr" });
        Assert.Equal(2, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("Agent:Repositories:0:RetentionFullType 'days'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Repositories:0:RetentionArchiveType incr needs", StringComparison.Ordinal));
    }
}
