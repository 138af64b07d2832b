using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Core.Tests.Configuration;

public class CpuLimitTests
{
    [Theory]
    [InlineData("max 100000", null)]
    [InlineData("200000 100000", 2)]
    [InlineData("150000 100000", 2)] // 1.5 CPUs round up
    [InlineData("50000 100000", 1)]  // half a CPU is still one process
    [InlineData("100000", 1)]        // period omitted: kernel default 100000
    [InlineData("garbage", null)]
    public void FromCgroupV2_ParsesQuota(string cpuMax, int? expected) =>
        Assert.Equal(expected, CpuLimit.FromCgroupV2(cpuMax));

    [Theory]
    [InlineData("-1", "100000", null)]
    [InlineData("400000", "100000", 4)]
    [InlineData("250000\n", "100000\n", 3)]
    public void FromCgroupV1_ParsesQuota(string quota, string period, int? expected) =>
        Assert.Equal(expected, CpuLimit.FromCgroupV1(quota, period));

    [Fact]
    public void Detect_V2Directory_UsesQuotaCappedByHost()
    {
        var root = Directory.CreateTempSubdirectory("cg2-");
        try
        {
            File.WriteAllText(Path.Combine(root.FullName, "cpu.max"), "100000 100000\n");
            Assert.Equal(1, CpuLimit.Detect(root.FullName));
            File.WriteAllText(Path.Combine(root.FullName, "cpu.max"), "max 100000\n");
            Assert.Equal(Environment.ProcessorCount, CpuLimit.Detect(root.FullName));
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public void Detect_V1Directory_UsesCfsQuota()
    {
        var root = Directory.CreateTempSubdirectory("cg1-");
        try
        {
            Directory.CreateDirectory(Path.Combine(root.FullName, "cpu"));
            File.WriteAllText(Path.Combine(root.FullName, "cpu", "cpu.cfs_quota_us"), "50000");
            File.WriteAllText(Path.Combine(root.FullName, "cpu", "cpu.cfs_period_us"), "100000");
            Assert.Equal(1, CpuLimit.Detect(root.FullName));
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }
}
