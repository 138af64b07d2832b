using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Core.Tests.Configuration;

public class PgBackRestConfigTests
{
    private static readonly PgBackRestCapabilities V245 = new(new Version(2, 45), new HashSet<string> { "gz", "lz4", "zst" });

    internal static Dictionary<string, Dictionary<string, string>> Sections(string conf)
    {
        var sections = new Dictionary<string, Dictionary<string, string>>();
        Dictionary<string, string>? current = null;
        foreach (var line in conf.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith('#'))
            {
                continue;
            }

            if (line.StartsWith('['))
            {
                current = sections[line.Trim('[', ']')] = [];
                continue;
            }

            var eq = line.IndexOf('=');
            current![line[..eq]] = line[(eq + 1)..];
        }

        return sections;
    }

    [Fact]
    public void Render_Posix_WritesGlobalAndStanzaSections()
    {
        var options = AgentOptionsValidatorTests.Valid();
        options.Repositories[0].RetentionFull = 2;
        var conf = Sections(PgBackRestConfig.Render(options, EffectiveSettings.Resolve(options.PgBackRest, V245, 2)));

        var global = conf["global"];
        Assert.Equal("posix", global["repo1-type"]);
        Assert.Equal("/repo1", global["repo1-path"]);
        Assert.Equal("2", global["repo1-retention-full"]);
        Assert.Equal("zst", global["compress-type"]);
        Assert.Equal("1", global["compress-level"]);
        Assert.Equal("2", global["process-max"]);
        Assert.Equal("y", global["archive-async"]);
        Assert.Equal("/pgdata-shared/spool", global["spool-path"]);
        Assert.Equal("10", global["io-timeout"]);
        Assert.False(global.ContainsKey("archive-push-queue-max"), "queue-max drops WAL: never set unless configured");
        Assert.False(global.ContainsKey("repo1-block"));
        Assert.True(int.Parse(global["protocol-timeout"]) > int.Parse(global["db-timeout"]));

        var stanza = conf["main"];
        Assert.Equal("/pgdata", stanza["pg1-path"]);
        Assert.Equal("5432", stanza["pg1-port"]);
        Assert.Equal("/run/pg", stanza["pg1-socket-path"]);
    }

    [Fact]
    public void Render_BlockIncrementalOn245_AddsBundleBlockAndBeta()
    {
        var options = AgentOptionsValidatorTests.Valid();
        options.PgBackRest.BlockIncremental = true;
        var global = Sections(PgBackRestConfig.Render(options, EffectiveSettings.Resolve(options.PgBackRest, V245, 2)))["global"];
        Assert.Equal("y", global["repo1-bundle"]);
        Assert.Equal("y", global["repo1-block"]);
        Assert.Equal("y", global["beta"]);
    }

    [Fact]
    public void Render_S3Repository_KeepsSecretsInFileOnly()
    {
        var options = AgentOptionsValidatorTests.Valid();
        options.Repositories.Add(new RepositoryOptions
        {
            Type = "s3",
            Path = "/demo",
            S3 = new S3RepositoryOptions { Bucket = "b", Endpoint = "127.0.0.1", Region = "us-east-1", Key = "AK", KeySecret = "SECRET", UriStyle = "path", Port = 4568, VerifyTls = false },
        });
        var global = Sections(PgBackRestConfig.Render(options, EffectiveSettings.Resolve(options.PgBackRest, V245, 1)))["global"];
        Assert.Equal("s3", global["repo2-type"]);
        Assert.Equal("SECRET", global["repo2-s3-key-secret"]);
        Assert.Equal("4568", global["repo2-storage-port"]);
        Assert.Equal("n", global["repo2-storage-verify-tls"]);
    }

    [Fact]
    public void Write_CreatesFileReadableByOwnerOnly()
    {
        var dir = Directory.CreateTempSubdirectory("conf-");
        try
        {
            var path = Path.Combine(dir.FullName, "sub", "pgbackrest.conf");
            PgBackRestConfig.Write(path, "[global]\n");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal("[global]\n", File.ReadAllText(path));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
