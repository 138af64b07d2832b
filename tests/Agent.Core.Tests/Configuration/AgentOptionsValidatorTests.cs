using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Core.Tests.Configuration;

public class AgentOptionsValidatorTests
{
    internal static AgentOptions Valid() => new()
    {
        Stanza = "main",
        Postgres = new PostgresOptions { DataDirectory = "/pgdata", SocketDirectory = "/run/pg", Port = 5432 },
        PgBackRest = new PgBackRestOptions
        {
            ConfigPath = "/run/agent/pgbackrest.conf",
            LockPath = "/run/agent/lock",
            LogPath = "/run/agent/log",
            SpoolPath = "/pgdata-shared/spool",
        },
        Repositories = [new RepositoryOptions { Type = "posix", Path = "/repo1" }],
    };

    private static readonly PgBackRestCapabilities V245 = new(new Version(2, 45), new HashSet<string> { "none", "bz2", "gz", "lz4", "zst" });

    [Fact]
    public void Validate_ValidOptions_NoErrors()
    {
        Assert.Empty(AgentOptionsValidator.Validate(Valid(), V245));
    }

    [Fact]
    public void Validate_ManyBadKeys_ListsEveryErrorWithItsKey()
    {
        var options = Valid();
        options.Stanza = "";
        options.Postgres.DataDirectory = "relative/path";
        options.Postgres.Port = 70000;
        options.PgBackRest.SpoolPath = "";
        options.PgBackRest.ProcessMax = 0;

        var errors = AgentOptionsValidator.Validate(options);

        Assert.Contains(errors, e => e.StartsWith("Agent:Stanza is required", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Postgres:DataDirectory 'relative/path' must be an absolute path", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Postgres:Port must be between 1 and 65535", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:PgBackRest:SpoolPath is required", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:PgBackRest:ProcessMax must be between 1 and 64", StringComparison.Ordinal));
        Assert.Equal(5, errors.Count);
    }

    [Theory]
    [InlineData(65)]
    [InlineData(-1)]
    public void Validate_ProcessMaxOutOfRange_NamesTheKey(int processMax)
    {
        var options = Valid();
        options.PgBackRest.ProcessMax = processMax;
        var error = Assert.Single(AgentOptionsValidator.Validate(options, V245));
        Assert.Contains("Agent:PgBackRest:ProcessMax", error);
    }

    [Fact]
    public void Validate_CompressTypeTheBinaryLacks_IsRefused()
    {
        var options = Valid();
        options.PgBackRest.CompressType = "zst";
        var withoutZst = new PgBackRestCapabilities(new Version(2, 45), new HashSet<string> { "none", "gz" });

        var error = Assert.Single(AgentOptionsValidator.Validate(options, withoutZst));
        Assert.Contains("Agent:PgBackRest:CompressType 'zst' is not supported by pgBackRest 2.45 here", error);
    }

    [Theory]
    [InlineData("gz", 10)]
    [InlineData("zst", 23)]
    [InlineData("lz4", 13)]
    public void Validate_CompressLevelOutOfRange_IsRefused(string type, int level)
    {
        var options = Valid();
        options.PgBackRest.CompressType = type;
        options.PgBackRest.CompressLevel = level;
        var error = Assert.Single(AgentOptionsValidator.Validate(options, V245));
        Assert.Contains("Agent:PgBackRest:CompressLevel", error);
    }

    [Fact]
    public void Validate_BlockIncrementalWithoutBundling_IsRefused()
    {
        var options = Valid();
        options.PgBackRest.BlockIncremental = true;
        options.Repositories[0].Bundle = false;
        var error = Assert.Single(AgentOptionsValidator.Validate(options, V245));
        Assert.Contains("Agent:Repositories:0:Bundle", error);
    }

    [Fact]
    public void Validate_FiveRepositoriesAndUnknownType_AreRefused()
    {
        var options = Valid();
        options.Repositories = Enumerable.Range(1, 5).Select(i => new RepositoryOptions { Type = "posix", Path = $"/r{i}" }).ToList();
        options.Repositories[2].Type = "ftp";
        var errors = AgentOptionsValidator.Validate(options, V245);
        Assert.Contains(errors, e => e.Contains("at most 4", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Repositories:2:Type 'ftp' is unknown", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_S3WithoutBucket_NamesTheMissingKey()
    {
        var options = Valid();
        options.Repositories.Add(new RepositoryOptions { Type = "s3", Path = "/demo", S3 = new S3RepositoryOptions { Endpoint = "s3.amazonaws.com", Region = "eu-west-1", Key = "k", KeySecret = "s" } });
        var error = Assert.Single(AgentOptionsValidator.Validate(options, V245));
        Assert.Equal("Agent:Repositories:1:S3:Bucket is required.", error);
    }

    [Fact]
    public void Validate_PathWithLineBreak_IsRefusedSoItCannotInjectConfig()
    {
        var options = Valid();
        options.PgBackRest.LogPath = "/log\nrepo1-path=/evil";
        var error = Assert.Single(AgentOptionsValidator.Validate(options, V245));
        Assert.Contains("line breaks", error);
    }

    [Fact]
    public void Validate_QueueMaxNotASize_IsRefused()
    {
        var options = Valid();
        options.PgBackRest.ArchivePushQueueMax = "lots";
        Assert.Contains("ArchivePushQueueMax", Assert.Single(AgentOptionsValidator.Validate(options, V245)));
    }

    [Fact]
    public void Validate_PosixRepositoryInMultiInstanceCluster_NeedsSharedVolume()
    {
        var options = Valid();
        options.Cluster.Instances = 3;

        var error = Assert.Single(AgentOptionsValidator.Validate(options, V245));
        Assert.StartsWith("Agent:Repositories:0:Shared must be true", error, StringComparison.Ordinal);

        options.Repositories[0].Shared = true;
        Assert.Empty(AgentOptionsValidator.Validate(options, V245));
    }

    [Fact]
    public void Validate_BackupLeaseOff_OnlyForOneInstance()
    {
        var options = Valid();
        options.Cluster.BackupLease = false;
        Assert.Empty(AgentOptionsValidator.Validate(options, V245));

        options.Cluster.Instances = 2;
        options.Repositories[0].Shared = true;
        var error = Assert.Single(AgentOptionsValidator.Validate(options, V245));
        Assert.StartsWith("Agent:Cluster:BackupLease is false but Agent:Cluster:Instances is 2", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_ClusterSettings_EachBadKeyNamed()
    {
        var options = Valid();
        options.Cluster.BackupFrom = "replica";
        options.Cluster.TlsServer.Port = 8432;
        options.Cluster.LeaseSeconds = 5;
        options.Cluster.Instances = 0;
        options.Repositories.Add(new RepositoryOptions { Type = "s3", Path = "/r", Shared = true, S3 = new S3RepositoryOptions { Bucket = "b", Endpoint = "e", Region = "r", Key = "k", KeySecret = "s" } });

        var errors = AgentOptionsValidator.Validate(options, V245);

        Assert.Contains(errors, e => e.StartsWith("Agent:Cluster:BackupFrom 'replica'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Cluster:LeaseSeconds", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Cluster:Instances", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Repositories:1:Shared applies to posix", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Cluster:TlsServer:KeyFile is required", StringComparison.Ordinal));
    }

    [Fact]
    public void Validate_BackupFromStandby_NeedsThePrimarysServer()
    {
        var options = Valid();
        options.Cluster.BackupFrom = "standby";

        var errors = AgentOptionsValidator.Validate(options, V245);

        Assert.Contains(errors, e => e.StartsWith("Agent:Cluster:Primary:Host is required", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Agent:Cluster:Primary:CertificateFile is required", StringComparison.Ordinal));
    }
}
