using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Core.Tests.Configuration;

public class EffectiveSettingsTests
{
    private static PgBackRestCapabilities Caps(string version, params string[] types) =>
        new(Version.Parse(version), types.ToHashSet());

    [Fact]
    public void Resolve_245WithZst_PicksZstLevel1AllCpusAndNoBlockIncremental()
    {
        var settings = EffectiveSettings.Resolve(new PgBackRestOptions(), Caps("2.45.0", "gz", "lz4", "zst"), cpuLimit: 3);

        Assert.Equal(("zst", SettingSource.Default), (settings.CompressType.Value, settings.CompressType.Source));
        Assert.Equal("1", settings.CompressLevel.Value);
        Assert.Equal(("3", SettingSource.Default), (settings.ProcessMax.Value, settings.ProcessMax.Source));
        Assert.Equal("n", settings.BlockIncremental.Value);
        Assert.False(settings.BlockIncrementalNeedsBeta);
        Assert.Empty(settings.Warnings);
    }

    [Fact]
    public void Resolve_WithoutZst_FallsBackToLz4ThenGz()
    {
        Assert.Equal("lz4", EffectiveSettings.Resolve(new(), Caps("2.45.0", "gz", "lz4"), 1).CompressType.Value);
        var gz = EffectiveSettings.Resolve(new(), Caps("2.45.0", "gz"), 1);
        Assert.Equal(("gz", "6"), (gz.CompressType.Value, gz.CompressLevel.Value));
    }

    [Fact]
    public void Resolve_246_TurnsBlockIncrementalOnByDefault()
    {
        var settings = EffectiveSettings.Resolve(new(), Caps("2.46.0", "gz", "zst"), 2);
        Assert.Equal(("y", SettingSource.Default), (settings.BlockIncremental.Value, settings.BlockIncremental.Source));
        Assert.False(settings.BlockIncrementalNeedsBeta);
    }

    [Fact]
    public void Resolve_BlockIncrementalForcedOn245_NeedsBetaAndWarns()
    {
        var settings = EffectiveSettings.Resolve(new PgBackRestOptions { BlockIncremental = true }, Caps("2.45.0", "gz", "zst"), 2);
        Assert.Equal(("y", SettingSource.Configured), (settings.BlockIncremental.Value, settings.BlockIncremental.Source));
        Assert.True(settings.BlockIncrementalNeedsBeta);
        Assert.Contains(settings.Warnings, w => w.Contains("beta", StringComparison.Ordinal));
    }

    [Fact]
    public void Resolve_ConfiguredValues_AreKeptAndMarkedConfigured()
    {
        var settings = EffectiveSettings.Resolve(
            new PgBackRestOptions { CompressType = "gz", CompressLevel = 3, ProcessMax = 7, BlockIncremental = false },
            Caps("2.59.1", "gz", "zst"), 2);
        Assert.All(settings.All, s => Assert.Equal(SettingSource.Configured, s.Source));
        Assert.Equal(["gz", "3", "7", "n"], settings.All.Select(s => s.Value));
    }

    [Fact]
    public void Capabilities_Parse_ReadsVersionAndCompressTypesFromHelp()
    {
        const string help = """
            The following compression types are supported:

            * none - no compression
            * gz - gzip compression format
            * zst - Zstandard compression format (not available on all platforms)

            default: gz
            """;
        var caps = PgBackRestCapabilities.Parse("pgBackRest 2.59.1\n", help);
        Assert.Equal(new Version(2, 59, 1), caps.Version);
        Assert.Equal(["gz", "none", "zst"], caps.CompressTypes.Order());
        Assert.True(caps.BlockIncrementalStable);
    }
}
