using System.Text.RegularExpressions;
using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// Bodies that are not protobuf messages, sent as raw bytes the way a buggy or hostile client would: every method answers
/// INVALID_ARGUMENT naming the expected message, the agent logs no stack trace and keeps serving, and an error that
/// echoes a huge field stays small enough for grpcio's 8 KiB metadata limit.
/// </summary>
public sealed partial class MalformedRequestTests
{
    private static readonly Marshaller<byte[]> Bytes = Marshallers.Create(static b => b, static b => b);

    // Invalid whatever the message type: they break the wire format itself, not a field.
    private static readonly byte[][] AnyMessageGarbage =
    [
        [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // a varint tag that never ends
        [0x10, 0x80], // field 2 varint, truncated
        [0x00], // tag 0
        [0x0a, 0x05, 0x61], // field 1 says 5 bytes, 1 follows
    ];

    // Field 1, length 2, bytes that are not UTF-8: invalid only where field 1 is a string.
    private static readonly byte[] BadUtf8InField1 = [0x0a, 0x02, 0xc3, 0x28];

    private static readonly (string Method, MethodType Type, string Request, bool StringField1)[] BackupAgentMethods =
    [
        ("GetStatus", MethodType.Unary, "GetStatusRequest", false),
        ("CreateStanza", MethodType.Unary, "CreateStanzaRequest", false),
        ("Check", MethodType.Unary, "CheckRequest", false),
        ("StartBackup", MethodType.Unary, "StartBackupRequest", true),
        ("StartRestore", MethodType.Unary, "StartRestoreRequest", true),
        ("GetOperation", MethodType.Unary, "GetOperationRequest", true),
        ("WatchOperation", MethodType.ServerStreaming, "WatchOperationRequest", true),
        ("ListBackups", MethodType.Unary, "ListBackupsRequest", false),
        ("GetRecoveryWindow", MethodType.Unary, "GetRecoveryWindowRequest", false),
        ("CancelOperation", MethodType.Unary, "CancelOperationRequest", true),
        ("ListOperations", MethodType.Unary, "ListOperationsRequest", false),
        ("ListSchedules", MethodType.Unary, "ListSchedulesRequest", false),
        ("Expire", MethodType.Unary, "ExpireRequest", false),
        ("Verify", MethodType.Unary, "VerifyRequest", false),
        ("Drill", MethodType.Unary, "DrillRequest", false),
        ("DeleteBackup", MethodType.Unary, "DeleteBackupRequest", true),
        ("GetRole", MethodType.Unary, "GetRoleRequest", false),
    ];

    private static readonly (string Method, MethodType Type, string Request, bool StringField1)[] WalArchiveMethods =
    [
        ("PushWal", MethodType.Unary, "PushWalRequest", true),
        ("GetWal", MethodType.Unary, "GetWalRequest", true),
    ];

    [Fact]
    public async Task EveryMethod_BodyNotAMessage_InvalidArgumentNamingRequestTypeAndNoStackTrace()
    {
        await using var env = await TestEnvironment.CreateAsync();
        using var socketChannel = env.Agent.CreateArchiveSocketChannel();

        var calls = 0;
        calls += await SendGarbageAsync(env.Agent.Channel.CreateCallInvoker(), "backrest.agent.v1.BackupAgent", BackupAgentMethods);
        calls += await SendGarbageAsync(socketChannel.CreateCallInvoker(), "backrest.agent.v1.WalArchive", WalArchiveMethods);
        // Every method; those whose field 1 is a string also get the bad UTF-8.
        var methods = BackupAgentMethods.Concat(WalArchiveMethods).ToList();
        Assert.Equal(methods.Count, typeof(BackupAgent.BackupAgentBase).GetMethods().Count(m => m.DeclaringType == typeof(BackupAgent.BackupAgentBase))
            + typeof(WalArchive.WalArchiveBase).GetMethods().Count(m => m.DeclaringType == typeof(WalArchive.WalArchiveBase)));
        Assert.Equal((methods.Count * AnyMessageGarbage.Length) + methods.Count(m => m.StringField1), calls);

        var status = await env.Client.GetStatusAsync(new GetStatusRequest(), deadline: Deadline());
        Assert.Equal(env.Stanza, status.Stanza);

        // Stopping drains the agent's output into the log, so nothing is still on its way when it is read.
        await env.Agent.StopAsync();
        var log = ReadLog(env.Agent.LogFile);
        Assert.DoesNotContain("Exception was thrown by handler", log, StringComparison.Ordinal);
        Assert.DoesNotContain("Error when executing service method", log, StringComparison.Ordinal);
        Assert.DoesNotContain("Error reading message", log, StringComparison.Ordinal);
        Assert.DoesNotMatch(StackFrame(), log);
        // Exactly one line per rejected call, at Information (the caller's fault, not the agent's): none would hide
        // the refusals from an operator, more would let a client flood the log.
        var mentions = log.Split('\n').Count(line => line.Contains("is not a valid backrest.agent.v1.", StringComparison.Ordinal));
        Assert.True(mentions == calls, $"{mentions} log lines for {calls} rejected calls:\n{env.Agent.LogTail(20)}");
        Assert.Equal(calls, RefusalEntries().Matches(log).Count);
    }

    [Fact]
    public async Task StartBackup_TypeOfTenThousandCharacters_InvalidArgumentWithShortError()
    {
        await using var env = await TestEnvironment.CreateAsync();

        var error = await Assert.ThrowsAsync<RpcException>(() => env.Client.StartBackupAsync(
            new StartBackupRequest { Type = new string('x', 10_000) }, deadline: Deadline()).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.True(error.Status.Detail.Length < 2048, $"The detail has {error.Status.Detail.Length} characters.");
        // The quoted value is cut to its first 64 characters, with its length (TransportSecurityTests covers every method).
        Assert.Contains(new string('x', 64) + "...(10000 characters)", error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain(new string('x', 65), error.Status.Detail, StringComparison.Ordinal);
        var trailerBytes = error.Trailers.Sum(t => t.Key.Length + (t.IsBinary ? t.ValueBytes.Length : t.Value.Length));
        Assert.True(trailerBytes < 2048, $"The trailers take {trailerBytes} bytes.");

        var status = await env.Client.GetStatusAsync(new GetStatusRequest(), deadline: Deadline());
        Assert.Equal(env.Stanza, status.Stanza);
    }

    private static async Task<int> SendGarbageAsync(
        CallInvoker invoker, string service, (string Method, MethodType Type, string Request, bool StringField1)[] methods)
    {
        var calls = 0;
        foreach (var (name, type, request, stringField1) in methods)
        {
            var method = new Method<byte[], byte[]>(type, service, name, Bytes, Bytes);
            IEnumerable<byte[]> payloads = stringField1 ? [.. AnyMessageGarbage, BadUtf8InField1] : AnyMessageGarbage;
            foreach (var payload in payloads)
            {
                var error = await Assert.ThrowsAsync<RpcException>(() => CallAsync(invoker, method, payload));
                var what = $"{service}/{name} with [{Convert.ToHexString(payload)}]: {error.Status}";
                Assert.True(error.StatusCode == StatusCode.InvalidArgument, what);
                Assert.True(error.Status.Detail.Contains($"not a valid backrest.agent.v1.{request} message", StringComparison.Ordinal), what);
                calls++;
            }
        }

        return calls;
    }

    private static async Task CallAsync(CallInvoker invoker, Method<byte[], byte[]> method, byte[] payload)
    {
        var options = new CallOptions(deadline: Deadline());
        if (method.Type == MethodType.ServerStreaming)
        {
            using var call = invoker.AsyncServerStreamingCall(method, null, options, payload);
            while (await call.ResponseStream.MoveNext(CancellationToken.None))
            {
            }
        }
        else
        {
            using var call = invoker.AsyncUnaryCall(method, null, options, payload);
            await call.ResponseAsync;
        }
    }

    // A deadline so that a hang fails the test instead of stalling the run.
    private static DateTime Deadline() => DateTime.UtcNow.AddSeconds(30);

    private static string ReadLog(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    // The console logger's two lines for an entry: "info: <category>[<event id>]", then the message, indented.
    [GeneratedRegex(@"^info: Grpc\.AspNetCore\.Server\.ServerCallHandler\[\d+\]\n\s+.*is not a valid backrest\.agent\.v1\.", RegexOptions.Multiline)]
    private static partial Regex RefusalEntries();

    // "   at Namespace.Type.Method(...)": a line of a .NET stack trace as the console logger writes it.
    [GeneratedRegex(@"^\s+at \S+\(", RegexOptions.Multiline)]
    private static partial Regex StackFrame();
}
