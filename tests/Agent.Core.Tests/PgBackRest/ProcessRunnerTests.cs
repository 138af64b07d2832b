using Backrest.Agent.Core.PgBackRest;

namespace Backrest.Agent.Core.Tests.PgBackRest;

/// <summary>The runner against real programs (seq, ls): what it keeps of a large output, and what it hands on.</summary>
public class ProcessRunnerTests
{
    private const int Lines = 300_000; // "1\n" .. "300000\n": about 2 MB, like a detail-level restore of a large cluster

    [Fact]
    public async Task RunAsync_LargeStdout_EveryLineToTheCallbackAndOnlyABoundedTailKept()
    {
        var seen = 0;
        string? last = null;
        var result = await new ProcessRunner().RunAsync(
            new ProcessSpec("seq", ["1", Lines.ToString()]) { OnStdoutLine = line => { seen++; last = line; } },
            CancellationToken.None);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal((Lines, Lines.ToString()), (seen, last));
        Assert.True(result.Stdout.Length <= OutputTail.Limit, $"kept {result.Stdout.Length} characters of stdout");
        Assert.EndsWith($"\n{Lines - 1}\n{Lines}\n", result.Stdout, StringComparison.Ordinal);
        // Whole lines only: the tail starts at a line boundary.
        Assert.All(result.Stdout.TrimEnd('\n').Split('\n'), line => Assert.Matches("^[0-9]+$", line));
    }

    [Fact]
    public async Task RunAsync_KeepWholeStdout_AllOfItKept()
    {
        var result = await new ProcessRunner().RunAsync(
            new ProcessSpec("seq", ["1", Lines.ToString()]) { KeepWholeStdout = true }, CancellationToken.None);

        var lines = result.Stdout.TrimEnd('\n').Split('\n');
        Assert.Equal(Lines, lines.Length);
        Assert.Equal(("1", Lines.ToString()), (lines[0], lines[^1]));
        // The bytes as printed, for a parser that reads UTF-8 (info's JSON): one digit string and a newline per line.
        Assert.Equal(Enumerable.Range(1, Lines).Sum(n => n.ToString().Length + 1), result.StdoutUtf8.Length);
        Assert.Equal(result.Stdout, System.Text.Encoding.UTF8.GetString(result.StdoutUtf8.Span));
    }

    [Fact]
    public async Task RunAsync_KeepWholeStdoutOneLongLine_ReadWhole()
    {
        // info --output=json is one line: 18 MB with 1,000 backups. 4 MiB of zero bytes and no newline here.
        var result = await new ProcessRunner().RunAsync(
            new ProcessSpec("head", ["-c", (4 << 20).ToString(), "/dev/zero"]) { KeepWholeStdout = true }, CancellationToken.None);

        Assert.Equal(0, result.ExitCode);
        Assert.Equal(4 << 20, result.StdoutUtf8.Length);
        Assert.All(result.StdoutUtf8.ToArray(), b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task RunAsync_KeepWholeStdoutWithLineCallback_Refused() =>
        await Assert.ThrowsAsync<ArgumentException>(() => new ProcessRunner().RunAsync(
            new ProcessSpec("true", []) { KeepWholeStdout = true, OnStdoutLine = _ => { } }, CancellationToken.None));

    [Fact]
    public async Task RunAsync_LargeStderr_BoundedTailWithTheLastError()
    {
        // ls prints one error line per missing path: 20000 lines, about 1 MB, on stderr.
        var missing = Enumerable.Range(1, 20_000).Select(i => $"/nonexistent-{i}").ToArray();

        var result = await new ProcessRunner().RunAsync(new ProcessSpec("ls", missing), CancellationToken.None);

        Assert.NotEqual(0, result.ExitCode);
        Assert.True(result.Stderr.Length <= OutputTail.Limit, $"kept {result.Stderr.Length} characters of stderr");
        Assert.Contains("/nonexistent-20000", result.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("/nonexistent-1'", result.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void OutputTail_LineLongerThanTheLimit_KeepsItsEnd()
    {
        var tail = new OutputTail(10);
        tail.Add("first");
        tail.Add("0123456789abcdef");

        Assert.Equal("789abcdef\n", tail.ToString());
    }

    [Fact]
    public async Task RunAsync_AgentHoldsSecretVariables_ChildSeesOnlyTheMinimalEnvironment()
    {
        const string name = "Agent__Repositories__1__S3__KeySecret";
        Environment.SetEnvironmentVariable(name, "leaked-if-you-see-this");
        Environment.SetEnvironmentVariable("PGBACKREST_REPO1_PATH", "/elsewhere");
        try
        {
            var result = await new ProcessRunner().RunAsync(
                new ProcessSpec("env", []) { KeepWholeStdout = true, Environment = new Dictionary<string, string> { ["EXTRA"] = "1" } },
                CancellationToken.None);

            var names = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l[..l.IndexOf('=')]).ToList();
            Assert.DoesNotContain("leaked-if-you-see-this", result.Stdout);
            Assert.All(names, n => Assert.Contains(n, ProcessRunner.InheritedVariables.Append("EXTRA")));
            Assert.Contains("PATH", names);
            Assert.Contains("EXTRA", names);
        }
        finally
        {
            Environment.SetEnvironmentVariable(name, null);
            Environment.SetEnvironmentVariable("PGBACKREST_REPO1_PATH", null);
        }
    }
}
