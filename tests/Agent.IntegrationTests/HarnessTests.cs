using System.Globalization;
using System.Text.Json;
using Backrest.Agent.IntegrationTests.Harness;

namespace Backrest.Agent.IntegrationTests;

/// <summary>The harness on its own, without the agent: PostgreSQL and pgBackRest as root-launched tests run them.</summary>
public sealed class HarnessTests
{
    [Fact]
    public async Task PostgresCluster_TwoClustersSideBySide_StartAnswerAndStop()
    {
        await using var first = await PostgresCluster.CreateAsync(new PostgresClusterOptions { Archive = false });
        await using var second = await PostgresCluster.CreateAsync(new PostgresClusterOptions { Archive = false });
        Assert.NotEqual(first.Directory.Path, second.Directory.Path);
        Assert.NotEqual(first.Port, second.Port);

        await Task.WhenAll(first.StartAsync(), second.StartAsync());

        Assert.True(first.IsRunning);
        Assert.Equal(1, await first.ScalarAsync<int>("select 1"));
        Assert.Equal(1, await second.ScalarAsync<int>("select 1"));
        Assert.Equal(second.DataDirectory, await second.ScalarAsync<string>("show data_directory"));
        Assert.Equal(second.Port.ToString(CultureInfo.InvariantCulture), await second.ScalarAsync<string>("show port"));
        Assert.Equal("", await first.ScalarAsync<string>("show listen_addresses"));
        Assert.Equal("on", await first.ScalarAsync<string>("show fsync"));

        await first.StopAsync();
        Assert.False(first.IsRunning);
        Assert.True(second.IsRunning);
        await second.StopAsync(ShutdownMode.Immediate);
        Assert.False(second.IsRunning);
    }

    [Fact]
    public async Task PgBackRest_HandWrittenConfig_StanzaCreateAndFullBackup()
    {
        const string Stanza = "harness";
        using var directory = TestDirectory.Create();
        var config = directory.Combine("pgbackrest.conf");
        var archivePush = $"{HarnessPaths.PgBackRest} --config={config} --stanza={Stanza} archive-push %p";
        await using var postgres = await PostgresCluster.CreateAsync(
            new PostgresClusterOptions { Directory = directory, ArchiveCommand = archivePush });
        foreach (var sub in new[] { "repo1", "log", "lock", "spool" })
        {
            directory.CreateSubdirectory(sub);
        }

        directory.WriteFile("pgbackrest.conf", $"""
            [global]
            repo1-type=posix
            repo1-path={directory.Combine("repo1")}
            log-path={directory.Combine("log")}
            lock-path={directory.Combine("lock")}
            spool-path={directory.Combine("spool")}
            log-level-console=info
            log-level-file=off
            start-fast=y
            compress-type=lz4

            [{Stanza}]
            pg1-path={postgres.DataDirectory}
            pg1-port={postgres.Port}
            pg1-socket-path={postgres.SocketDirectory}
            """);
        await postgres.StartAsync();

        Task<CommandResult> PgBackRest(params string[] args) =>
            OsCommand.RunAsPostgresAsync(HarnessPaths.PgBackRest, [$"--config={config}", $"--stanza={Stanza}", .. args]);

        (await PgBackRest("stanza-create")).EnsureSuccess();
        (await PgBackRest("backup", "--type=full")).EnsureSuccess();

        var info = (await PgBackRest("info", "--output=json")).EnsureSuccess();
        using var json = JsonDocument.Parse(info.StandardOutput);
        var backups = json.RootElement[0].GetProperty("backup");
        Assert.Equal(1, backups.GetArrayLength());
        Assert.Equal("full", backups[0].GetProperty("type").GetString());

        // archive_command works: the backup's WAL is in the repo and PostgreSQL saw no failure.
        Assert.Equal(0L, await postgres.ScalarAsync<long>("select failed_count from pg_stat_archiver"));
        await postgres.ExecuteAsync("create table marker (note text); insert into marker values ('after the backup')");
        var segment = await postgres.SwitchWalAsync();
        await postgres.WaitForArchivedAsync(segment, TimeSpan.FromSeconds(30));
    }
}
