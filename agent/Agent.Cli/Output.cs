using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Spectre.Console;

namespace Backrest.Agent.Cli;

/// <summary>Where a command writes: stdout for results, stderr for errors, Spectre for tables and progress bars.</summary>
internal sealed class Output(TextWriter stdout, TextWriter stderr, IAnsiConsole console, bool isTerminal)
{
    // Default values are written too: a script reading "reachable": false should not have to know proto3 omits it.
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithFormatDefaultValues(true));

    private static readonly JsonSerializerOptions IndentedJson = new()
    {
        WriteIndented = true,
        // Error messages and hints hold quotes, '<' and '+'; escaping them as \uXXXX helps no one reading a terminal.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public TextWriter Out { get; } = stdout;

    public TextWriter Error { get; } = stderr;

    public IAnsiConsole Console { get; } = console;

    /// <summary>True when stdout is an ANSI terminal: tables and live progress; otherwise plain lines that log well.</summary>
    public bool IsTerminal { get; } = isTerminal;

    public static Output ForConsole()
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(System.Console.Out) });
        var isTerminal = !System.Console.IsOutputRedirected && console.Profile.Capabilities.Ansi;
        return new Output(System.Console.Out, System.Console.Error, console, isTerminal);
    }

    public void Fail(string message) => Error.WriteLine("backrestctl: " + message);

    public void WriteJson(IMessage message) => Out.WriteLine(ToNode(message).ToJsonString(IndentedJson));

    /// <summary>One agent: its message as is. Several: one object keyed by agent, failed agents left out (they went to stderr).</summary>
    public void WriteJson<T>(IReadOnlyList<AgentReply<T>> replies)
        where T : class, IMessage
    {
        if (replies.Count == 1)
        {
            if (replies[0].Reply is { } reply)
            {
                WriteJson(reply);
            }

            return;
        }

        var document = new JsonObject();
        foreach (var (agent, reply, _) in replies)
        {
            if (reply is not null)
            {
                document[agent.ToString()] = ToNode(reply);
            }
        }

        Out.WriteLine(document.ToJsonString(IndentedJson));
    }

    public void WriteJson(JsonNode node) => Out.WriteLine(node.ToJsonString(IndentedJson));

    public static JsonNode ToNode(IMessage message) =>
        JsonNode.Parse(Formatter.Format(message)) ?? new JsonObject();
}

/// <summary>Human formats shared by the commands: sizes, durations, UTC times, percentages.</summary>
internal static class Format
{
    public const string None = "-";

    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

    public static string Size(long bytes)
    {
        if (bytes < 1024)
        {
            return bytes.ToString(CultureInfo.InvariantCulture) + " B";
        }

        double value = bytes;
        var unit = 0;
        while (value >= 1024 && unit < Units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return value.ToString(value < 100 ? "0.#" : "0", CultureInfo.InvariantCulture) + " " + Units[unit];
    }

    /// <summary>Zero means "not reported" (block-incremental repository sizes, for example).</summary>
    public static string SizeOrNone(long bytes) => bytes > 0 ? Size(bytes) : None;

    public static string Duration(TimeSpan duration)
    {
        if (duration < TimeSpan.Zero)
        {
            return None;
        }

        var i = CultureInfo.InvariantCulture;
        if (duration.TotalDays >= 1)
        {
            return string.Create(i, $"{(int)duration.TotalDays}d{duration.Hours:00}h{duration.Minutes:00}m");
        }

        if (duration.TotalHours >= 1)
        {
            return string.Create(i, $"{duration.Hours}h{duration.Minutes:00}m{duration.Seconds:00}s");
        }

        return duration.TotalMinutes >= 1
            ? string.Create(i, $"{duration.Minutes}m{duration.Seconds:00}s")
            : string.Create(i, $"{duration.Seconds}s");
    }

    public static string Seconds(double seconds) => Duration(TimeSpan.FromSeconds(Math.Floor(seconds)));

    public static string Duration(Timestamp? from, Timestamp? to) =>
        from is null || to is null ? None : Duration(to.ToDateTimeOffset() - from.ToDateTimeOffset());

    /// <summary>UTC, "yyyy-MM-dd HH:mm:ss"; callers say UTC once in a header or suffix.</summary>
    public static string Time(Timestamp? timestamp) =>
        timestamp is null
            ? None
            : timestamp.ToDateTimeOffset().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    public static string TimeWithAge(Timestamp? timestamp, DateTimeOffset now) =>
        timestamp is null
            ? None
            : $"{Time(timestamp)} UTC ({Duration(now - timestamp.ToDateTimeOffset())} ago)";

    public static string Percent(double percent) =>
        percent < 0 ? "?%" : percent.ToString("0", CultureInfo.InvariantCulture) + "%";

    public static string Integer(long value) => value.ToString(CultureInfo.InvariantCulture);

    public static string OrNone(string? value) => string.IsNullOrEmpty(value) ? None : value;

    public static string Repo(int repo) => repo > 0 ? "repo" + repo.ToString(CultureInfo.InvariantCulture) : None;
}
