using Backrest.Agent.Core.PgBackRest;

namespace Backrest.Agent.Core.Tests.PgBackRest;

public class InfoParserTests
{
    private static string Sample => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "info-sample-2.45.json"));

    [Fact]
    public void Parse_Sample245_ReadsStanzaBackupsAndArchive()
    {
        var stanza = Assert.Single(InfoParser.Parse(Sample));

        Assert.Equal("demo", stanza.Name);
        Assert.Equal((0, "ok"), (stanza.StatusCode, stanza.StatusMessage));
        Assert.False(stanza.BackupLock.Held);
        Assert.Null(stanza.BackupLock.Size);
        // Beyond 2^53: a double would corrupt it.
        Assert.Equal(7711703545269370870UL, Assert.Single(stanza.Databases).SystemId);
        var archive = Assert.Single(stanza.Archives);
        Assert.Equal(("000000010000000000000001", "00000001000000000000000F"), (archive.Min, archive.Max));

        Assert.Equal(["full", "diff", "incr"], stanza.Backups.Select(b => b.Type));
        var incr = stanza.Backups[2];
        Assert.Equal("20261124-114826F_20261124-114848I", incr.Label);
        Assert.Equal("20261124-114826F_20261124-114835D", incr.Prior);
        Assert.Equal(["20261124-114826F", "20261124-114826F_20261124-114835D"], incr.References);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1795520928), incr.Start);
        Assert.Equal(("0/F000028", "0/F000138"), (incr.LsnStart, incr.LsnStop));
        Assert.Equal((104216284L, 8584869L), (incr.DatabaseSize, incr.RepositorySize!.Value));
        Assert.Null(stanza.Backups[0].Prior);
        Assert.False(stanza.Backups[0].Error);
        // None listed: the caller decides whether that means none (2.41+) or unknown.
        Assert.Null(stanza.Backups[0].Annotations);
    }

    [Fact]
    public void Parse_NewerFields_ReadsProgressAndBlockIncrementalSizes()
    {
        const string json = """
            [{"name":"main","cipher":"none","status":{"code":0,"message":"ok",
              "lock":{"backup":{"held":true,"size":1000,"size-cplt":250,"repo":[{"key":1,"size":1000,"size-cplt":250}]},
                      "restore":{"held":false}}},
              "db":[{"id":1,"repo-key":1,"system-id":18446744073709551615,"version":"16"}],
              "archive":[{"database":{"id":1,"repo-key":1},"id":"16-1","min":null,"max":null}],
              "repo":[{"key":1,"cipher":"none","status":{"code":0,"message":"ok"}}],
              "backup":[{"label":"20261125-010000F","type":"full","prior":null,"reference":null,
                "timestamp":{"start":1,"stop":2},"archive":{"start":"000000010000000000000002","stop":"000000010000000000000002"},
                "backrest":{"format":5,"version":"2.59.1"},"database":{"id":1,"repo-key":1},
                "info":{"size":10,"delta":10,"repository":{"delta":3,"size-map":1,"delta-map":1}},
                "lsn":{"start":"0/2000028","stop":"0/2000100"},"annotation":{"k":"v"}}]}]
            """;
        var stanza = Assert.Single(InfoParser.Parse(json));
        Assert.Equal(new LockInfo(true, 1000, 250), stanza.BackupLock);
        Assert.Equal(ulong.MaxValue, stanza.Databases[0].SystemId);
        Assert.Null(stanza.Archives[0].Max);
        Assert.Null(stanza.Backups[0].RepositorySize);
        Assert.Equal(3, stanza.Backups[0].RepositoryDelta);
        Assert.Equal((1L, 1L), (stanza.Backups[0].RepositorySizeMap, stanza.Backups[0].RepositoryDeltaMap));
        Assert.Null(stanza.Backups[0].Error);
        Assert.Equal(1, stanza.Backups[0].Annotations);
    }

    [Fact]
    public void Parse_MissingStanza_HasStatusAndNoBackups()
    {
        const string json = """
            [{"archive":[],"backup":[],"cipher":"none","db":[],"name":"demo","repo":[{"cipher":"none","key":1,"status":{"code":1,"message":"missing stanza path"}}],"status":{"code":1,"lock":{"backup":{"held":false}},"message":"missing stanza path"}}]
            """;
        var stanza = Assert.Single(InfoParser.Parse(json));
        Assert.Equal(1, stanza.StatusCode);
        Assert.Empty(stanza.Backups);
        Assert.Equal(1, stanza.Repositories[0].StatusCode);
    }
}
