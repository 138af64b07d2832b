using System.Globalization;
using System.Net.Sockets;
using System.Reflection;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.ArchiveClient;

/// <summary>
/// PostgreSQL's archive_command (push) and restore_command (get), forwarded to the agent's WalArchive service.
/// PostgreSQL reads only the exit code: push exits 0 only when the agent stored the segment, so that any
/// failure keeps it in pg_wal for a retry; get exits 1 for "not found" and for errors, never above 125,
/// which PostgreSQL would treat as fatal and abort recovery on.
/// </summary>
internal static class Program
{
    private const string Name = "pgbackrest-archive";
    private const string DefaultSocket = "/var/run/backrest-agent/agent.sock";
    private const int Ok = 0;
    private const int Failed = 1;
    private const int UsageError = 2;

    // Short, so that a dead or wedged agent fails the command at once and PostgreSQL retries later.
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan DefaultCallTimeout = TimeSpan.FromSeconds(180);

    // 1 + 2 + 4 + 8 s of waiting between five attempts: long enough to ride out an agent restart.
    private const int GetAttempts = 5;

    private const string Usage = $"""
        Usage: {Name} [--socket PATH] push WAL_PATH
               {Name} [--socket PATH] get WAL_NAME DESTINATION
               {Name} --help | --version

        PostgreSQL's archive_command and restore_command, served by the backrest agent:
          archive_command = '{Name} --socket /run/backrest-agent/agent.sock push %p'
          restore_command = '{Name} --socket /run/backrest-agent/agent.sock get %f "%p"'

        The socket is --socket, else $BACKREST_AGENT_SOCKET, else {DefaultSocket}.
        $BACKREST_ARCHIVE_TIMEOUT_SECONDS bounds the whole call (default 180).
        Exit codes: 0 done; 1 not pushed, WAL not found or get failed; 2 usage error.
        """;

    public static async Task<int> Main(string[] args)
    {
        string? socket = null;
        var i = 0;
        for (; i < args.Length && args[i].StartsWith('-'); i++)
        {
            switch (args[i])
            {
                case "-h" or "--help":
                    Console.Out.WriteLine(Usage);
                    return Ok;
                case "--version":
                    Console.Out.WriteLine($"{Name} {Version()}");
                    return Ok;
                case "--socket" when i + 1 < args.Length:
                    socket = args[++i];
                    break;
                case var option when option.StartsWith("--socket=", StringComparison.Ordinal):
                    socket = option["--socket=".Length..];
                    break;
                default:
                    return UsageFailure($"unknown or incomplete option '{args[i]}'");
            }
        }

        var verb = i < args.Length ? args[i] : null;
        var operands = args.AsSpan(Math.Min(i + 1, args.Length));
        if (verb is not ("push" or "get") || operands.Length != (verb == "push" ? 1 : 2))
        {
            return UsageFailure(verb is null ? "missing command" : $"bad command line for '{verb}'");
        }

        socket ??= Environment.GetEnvironmentVariable("BACKREST_AGENT_SOCKET");
        if (string.IsNullOrEmpty(socket))
        {
            socket = DefaultSocket;
        }

        if (!TryGetCallTimeout(out var callTimeout))
        {
            return UsageFailure("BACKREST_ARCHIVE_TIMEOUT_SECONDS must be a positive number of seconds");
        }

        // Named in every message as PostgreSQL passed it (pg_wal/...), which is what its log shows too.
        var subject = $"{verb} {operands[0]}";
        try
        {
            using var channel = UnixSocketChannel.Create(socket, ConnectTimeout);
            var client = new WalArchive.WalArchiveClient(channel);
            var deadline = TimeProvider.System.GetUtcNow().UtcDateTime + callTimeout;

            // PostgreSQL runs the command in the data directory with %p relative; the agent has another cwd.
            return verb == "push"
                ? await PushAsync(client, subject, Path.GetFullPath(operands[0]), deadline)
                : await GetWithRetriesAsync(client, operands[0], Path.GetFullPath(operands[1]), deadline);
        }
        catch (RpcException ex)
        {
            return Failure(subject, StatusCodeNames.Name(ex.StatusCode), Describe(ex, verb, socket, callTimeout));
        }
        catch (Exception ex)
        {
            // Never let an exception escape: the runtime would abort with SIGABRT (exit 134), and
            // PostgreSQL treats a restore_command killed by a signal as fatal.
            return Failure(subject, ex.GetType().Name, ex.Message);
        }
    }

    private static async Task<int> PushAsync(WalArchive.WalArchiveClient client, string subject, string path, DateTime deadline)
    {
        var reply = await client.PushWalAsync(new PushWalRequest { Path = path }, deadline: deadline);
        foreach (var warning in reply.Warnings)
        {
            Console.Error.WriteLine($"{Name}: {subject}: warning: {warning.ReplaceLineEndings(" ")}");
        }

        return Ok;
    }

    /// <summary>
    /// PostgreSQL reads any failure of restore_command as "the archive ends here": during a restore to the
    /// end of WAL it would then promote early and silently leave out everything after. A transient error
    /// (agent restarting, repository hiccup) is therefore retried for a while before it is reported.
    /// </summary>
    private static async Task<int> GetWithRetriesAsync(WalArchive.WalArchiveClient client, string name, string destination, DateTime deadline)
    {
        var delay = TimeSpan.FromSeconds(1);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await GetAsync(client, name, destination, deadline);
            }
            catch (RpcException ex) when (attempt < GetAttempts && IsTransient(ex.StatusCode) &&
                                          TimeProvider.System.GetUtcNow().UtcDateTime + delay < deadline)
            {
                Console.Error.WriteLine($"{Name}: get {name}: {StatusCodeNames.Name(ex.StatusCode)}, retrying in {delay.TotalSeconds:0} s");
                await Task.Delay(delay);
                delay *= 2;
            }
        }
    }

    private static bool IsTransient(StatusCode code) =>
        code is StatusCode.Unavailable or StatusCode.DeadlineExceeded or StatusCode.Aborted or StatusCode.Internal or StatusCode.Unknown;

    private static async Task<int> GetAsync(WalArchive.WalArchiveClient client, string name, string destination, DateTime deadline)
    {
        var reply = await client.GetWalAsync(new GetWalRequest { Name = name, Destination = destination }, deadline: deadline);

        // Not found is routine (the end of the archive during recovery), so it is silent.
        return reply.Found ? Ok : Failed;
    }

    private static bool TryGetCallTimeout(out TimeSpan timeout)
    {
        timeout = DefaultCallTimeout;
        var value = Environment.GetEnvironmentVariable("BACKREST_ARCHIVE_TIMEOUT_SECONDS");
        if (string.IsNullOrEmpty(value))
        {
            return true;
        }

        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds)
            || !(seconds > 0) || seconds > TimeSpan.FromDays(1).TotalSeconds)
        {
            return false;
        }

        timeout = TimeSpan.FromSeconds(seconds);
        return true;
    }

    /// <summary>One line an operator can act on; gRPC's own detail for transport failures is generic.</summary>
    private static string Describe(RpcException ex, string verb, string socket, TimeSpan callTimeout)
    {
        if (ex.StatusCode == StatusCode.DeadlineExceeded)
        {
            return $"no reply from the agent within {callTimeout.TotalSeconds:0.###} s";
        }

        if (ex.StatusCode is not (StatusCode.Unavailable or StatusCode.Internal) || ex.Status.DebugException is not { } cause)
        {
            return ex.Status.Detail;
        }

        // A refused connection arrives as an HttpRequestException around the SocketException: look for the socket error first.
        for (var inner = cause; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socketError)
            {
                var reason = socketError.SocketErrorCode switch
                {
                    // The runtime reports a missing socket file (ENOENT) as "Cannot assign requested address".
                    SocketError.AddressNotAvailable when !File.Exists(socket) => "no such socket; is the agent running?",
                    SocketError.ConnectionRefused => "connection refused; is the agent running?",
                    _ => socketError.Message,
                };
                return $"cannot connect to the agent at {socket}: {reason}";
            }

            if (inner is TimeoutException)
            {
                return $"no connection to the agent at {socket} within {ConnectTimeout.TotalSeconds:0} s";
            }
        }

        // Connected, then the connection ended before the reply ("The response ended prematurely"): the agent died or
        // restarted during the call. Nothing was acknowledged, so nothing is lost.
        for (var inner = cause; inner is not null; inner = inner.InnerException)
        {
            if (inner is HttpRequestException or HttpProtocolException or IOException)
            {
                return verb == "push"
                    ? $"the agent at {socket} went away during the push (the connection closed before it replied); " +
                      "the segment stays in pg_wal and PostgreSQL retries it"
                    : $"the agent at {socket} went away during the get (the connection closed before it replied); " +
                      "PostgreSQL retries the get";
            }
        }

        return $"{ex.Status.Detail} ({cause.GetBaseException().Message})";
    }

    private static string Version() =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    private static int Failure(string subject, string status, string detail)
    {
        // One line: PostgreSQL's log prefixes each stderr line, and a multi-line detail would be split up.
        Console.Error.WriteLine($"{Name}: {subject}: {status}: {detail.ReplaceLineEndings(" ")}");
        return Failed;
    }

    private static int UsageFailure(string problem)
    {
        Console.Error.WriteLine($"{Name}: {problem}");
        Console.Error.WriteLine(Usage);
        return UsageError;
    }
}
