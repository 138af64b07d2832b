using System.Globalization;

namespace Backrest.Agent.Core.Configuration;

/// <summary>
/// The CPUs this container may use: the cgroup quota, not the host's core count
/// (a pod limited to 2 CPUs on a 64-core node must not start 64 pgBackRest processes).
/// </summary>
public static class CpuLimit
{
    /// <summary>Reads cgroup v2 <c>cpu.max</c>, else v1 <c>cfs_quota_us</c>/<c>cfs_period_us</c>, else the host's count.</summary>
    public static int Detect(string cgroupRoot = "/sys/fs/cgroup")
    {
        var host = Environment.ProcessorCount;
        var v2 = Path.Combine(cgroupRoot, "cpu.max");
        if (File.Exists(v2))
        {
            return FromCgroupV2(File.ReadAllText(v2)) is { } cpus ? Math.Min(cpus, host) : host;
        }

        var quota = Path.Combine(cgroupRoot, "cpu", "cpu.cfs_quota_us");
        var period = Path.Combine(cgroupRoot, "cpu", "cpu.cfs_period_us");
        if (File.Exists(quota) && File.Exists(period))
        {
            return FromCgroupV1(File.ReadAllText(quota), File.ReadAllText(period)) is { } cpus ? Math.Min(cpus, host) : host;
        }

        return host;
    }

    /// <summary><c>"max 100000"</c> means no quota (null); <c>"150000 100000"</c> is 1.5 CPUs, rounded up to 2.</summary>
    public static int? FromCgroupV2(string cpuMax)
    {
        var parts = cpuMax.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length < 1 || parts[0] == "max")
        {
            return null;
        }

        var period = parts.Length > 1 ? parts[1] : "100000";
        return FromQuota(parts[0], period);
    }

    /// <summary>A quota of -1 means no limit (null).</summary>
    public static int? FromCgroupV1(string quotaUs, string periodUs) => FromQuota(quotaUs.Trim(), periodUs.Trim());

    private static int? FromQuota(string quota, string period)
    {
        if (!long.TryParse(quota, NumberStyles.Integer, CultureInfo.InvariantCulture, out var q) || q <= 0 ||
            !long.TryParse(period, NumberStyles.Integer, CultureInfo.InvariantCulture, out var p) || p <= 0)
        {
            return null;
        }

        return (int)Math.Max(1, (q + p - 1) / p);
    }
}
