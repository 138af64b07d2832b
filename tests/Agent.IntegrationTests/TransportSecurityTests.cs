using Backrest.Agent.IntegrationTests.Harness;
using Backrest.Agent.V1;
using Grpc.Core;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Backrest.Agent.IntegrationTests;

/// <summary>
/// TLS and mutual TLS on the control port, bearer tokens and certificate identities with roles, files replaced on disk
/// taking effect without a restart, and a WAL socket that serves WalArchive only to allowed uids.
/// </summary>
public sealed class TransportSecurityTests : IDisposable
{
    private readonly string pki = Libc.MakeTempDirectory("/tmp/bra-pki-XXXXXX");

    public TransportSecurityTests()
    {
        File.SetUnixFileMode(pki, (UnixFileMode)0b111_101_101);
    }

    public void Dispose() => Directory.Delete(pki, recursive: true);

    [Fact]
    public async Task Tls_PlaintextClientFails_TrustingClientSucceeds_CertificateReplacedIsServedWithoutRestart()
    {
        var first = new TestAuthority(pki, "first");
        var (cert, key) = first.IssueServer("server");
        var certPath = Path.Combine(pki, "live.pem");
        var keyPath = Path.Combine(pki, "live.key");
        File.Copy(cert, certPath);
        File.Copy(key, keyPath);
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            StartPostgres = false,
            AgentSettings = new Dictionary<string, string?> { ["Agent__Tls__CertificateFile"] = certPath, ["Agent__Tls__KeyFile"] = keyPath },
            ClientSecurity = new ClientSecurity(first.Certificate),
        });

        var status = await env.Client.GetStatusAsync(new GetStatusRequest());
        Assert.Equal("tls", status.TransportSecurity);

        using var plain = new ClientSecurity().CreateChannel(env.Agent.Address);
        var refused = await Assert.ThrowsAsync<RpcException>(() =>
            new BackupAgent.BackupAgentClient(plain).GetStatusAsync(new GetStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(10)).ResponseAsync);
        Assert.NotEqual(StatusCode.OK, refused.StatusCode);

        // Rotation: a certificate from another CA, written over the files; a new connection gets it.
        var second = new TestAuthority(pki, "second");
        var (newCert, newKey) = second.IssueServer("server2");
        File.Copy(newKey, keyPath, overwrite: true);
        File.Copy(newCert, certPath, overwrite: true);
        await Task.Delay(TimeSpan.FromSeconds(1.2)); // the agent looks at the files at most once a second

        using var rotated = new ClientSecurity(second.Certificate).CreateChannel(env.Agent.Address);
        var after = await new BackupAgent.BackupAgentClient(rotated).GetStatusAsync(new GetStatusRequest());
        Assert.Equal("tls", after.TransportSecurity);
        using var stale = new ClientSecurity(first.Certificate).CreateChannel(env.Agent.Address);
        await Assert.ThrowsAsync<RpcException>(() => new BackupAgent.BackupAgentClient(stale).GetStatusAsync(new GetStatusRequest()).ResponseAsync);
    }

    [Fact]
    public async Task MutualTls_ClientFromAnotherCaFails_KnownCertificateGetsItsRole()
    {
        var ca = new TestAuthority(pki, "ca");
        var other = new TestAuthority(pki, "other");
        var (cert, key) = ca.IssueServer("server");
        var (viewer, _) = ca.IssueClient("dashboard");
        var (stranger, _) = other.IssueClient("stranger");
        var (operatorCert, operatorFiles) = ca.IssueClient("backrestctl");
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            StartPostgres = false,
            AgentSettings = new Dictionary<string, string?>
            {
                ["Agent__Tls__CertificateFile"] = cert,
                ["Agent__Tls__KeyFile"] = key,
                ["Agent__Tls__ClientCaFile"] = ca.CertificateFile,
                ["Agent__Auth__CertificateRoles__dashboard"] = "viewer",
                ["Agent__Auth__CertificateRoles__backrestctl"] = "operator",
            },
            ClientSecurity = new ClientSecurity(ca.Certificate, operatorCert),
        });

        Assert.Equal("mtls", (await env.Client.GetStatusAsync(new GetStatusRequest())).TransportSecurity);

        using var strangerChannel = new ClientSecurity(ca.Certificate, stranger).CreateChannel(env.Agent.Address);
        await Assert.ThrowsAsync<RpcException>(() => new BackupAgent.BackupAgentClient(strangerChannel).GetStatusAsync(new GetStatusRequest()).ResponseAsync);
        using var anonymous = new ClientSecurity(ca.Certificate).CreateChannel(env.Agent.Address);
        await Assert.ThrowsAsync<RpcException>(() => new BackupAgent.BackupAgentClient(anonymous).GetStatusAsync(new GetStatusRequest()).ResponseAsync);

        using var viewerChannel = new ClientSecurity(ca.Certificate, viewer).CreateChannel(env.Agent.Address);
        var viewerClient = new BackupAgent.BackupAgentClient(viewerChannel);
        await viewerClient.GetStatusAsync(new GetStatusRequest());
        var denied = await Assert.ThrowsAsync<RpcException>(() => viewerClient.StartBackupAsync(new StartBackupRequest { Type = "full" }).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Contains("cert:dashboard is a viewer", denied.Status.Detail);

        // backrestctl with the operator's certificate: the agent's reply, not a transport or permission error.
        var cli = await RunCliAsync("--agent", env.Agent.Address, "--tls-ca", ca.CertificateFile,
            "--cert", operatorFiles.CertificateFile, "--key", operatorFiles.KeyFile, "status", "--json");
        Assert.Contains("\"transportSecurity\": \"mtls\"", cli.StandardOutput);
        var cliWithoutCa = await RunCliAsync("--agent", env.Agent.Address, "--tls", "status");
        Assert.NotEqual(0, cliWithoutCa.ExitCode);
        Assert.Contains("TLS handshake failed", cliWithoutCa.StandardError);
        Assert.Contains("--tls-ca", cliWithoutCa.StandardError);
    }

    [Fact]
    public async Task Tokens_NoneIsUnauthenticated_ViewerCannotMutate_ReplacedFileTakesEffect()
    {
        var tokens = Path.Combine(pki, "tokens");
        await File.WriteAllTextAsync(tokens, "# role name token\nviewer bob viewer-token-1\noperator alice operator-token-1\n");
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            StartPostgres = false,
            AgentSettings = new Dictionary<string, string?> { ["Agent__Auth__TokensFile"] = tokens },
            ClientSecurity = new ClientSecurity(Token: "operator-token-1"),
        });
        Assert.Equal("tokens", (await env.Client.GetStatusAsync(new GetStatusRequest())).Authorization);

        var none = await Assert.ThrowsAsync<RpcException>(() =>
            new BackupAgent.BackupAgentClient(env.Agent.Channel).GetStatusAsync(new GetStatusRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, none.StatusCode);
        var wrong = await Assert.ThrowsAsync<RpcException>(() =>
            Client(env, "no-such-token").GetStatusAsync(new GetStatusRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, wrong.StatusCode);

        // Every method that is not a read needs an operator: StartBackup, StartRestore, deletes, and any added later.
        var invoker = new ClientSecurity(Token: "viewer-token-1").CreateInvoker(env.Agent.Channel);
        var reads = new HashSet<string> { "GetStatus", "ListBackups", "GetRecoveryWindow", "GetOperation", "WatchOperation", "ListOperations", "ListSchedules", "GetRole" };
        var service = AgentReflection.Descriptor.Services.Single(s => s.Name == "BackupAgent");
        Assert.Contains(service.Methods, m => m.Name == "StartRestore");
        foreach (var method in service.Methods)
        {
            var code = await CallAsync(invoker, method, new byte[0]);
            if (reads.Contains(method.Name))
            {
                Assert.True(code is not (StatusCode.PermissionDenied or StatusCode.Unauthenticated), $"{method.Name}: {code}");
            }
            else
            {
                Assert.True(code == StatusCode.PermissionDenied, $"viewer calling {method.Name} got {code}");
            }
        }

        // The operator's mutating call passes access control and is audited with its identity and outcome.
        var refused = await Assert.ThrowsAsync<RpcException>(() => env.Client.StartBackupAsync(new StartBackupRequest { Type = "bogus" }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, refused.StatusCode);
        await AgentTestExtensions.WaitUntilAsync(() => Task.FromResult(File.ReadAllText(env.Agent.LogFile).Contains(
            "audit: token:alice called StartBackup: INVALID_ARGUMENT", StringComparison.Ordinal)), TimeSpan.FromSeconds(5), () => "the audit line");
        Assert.DoesNotContain("operator-token-1", await File.ReadAllTextAsync(env.Agent.LogFile));

        // Rotation: the file replaced on disk; the next call uses it.
        await File.WriteAllTextAsync(tokens, "operator alice operator-token-2\n");
        await Task.Delay(TimeSpan.FromSeconds(1.2));
        await Client(env, "operator-token-2").GetStatusAsync(new GetStatusRequest());
        var old = await Assert.ThrowsAsync<RpcException>(() => env.Client.GetStatusAsync(new GetStatusRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, old.StatusCode);
    }

    [Fact]
    public async Task ArchiveSocket_RefusesControlMethodsAndOtherUids()
    {
        var nobody = Libc.GetUser("nobody");
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions
        {
            // Allow a uid that is not nobody: the socket file then admits everyone and only SO_PEERCRED decides.
            AgentSettings = new Dictionary<string, string?> { ["Agent__Listen__ArchiveSocketUid"] = (nobody.Uid - 1).ToString() },
        });

        using var socketChannel = env.Agent.CreateArchiveSocketChannel();
        var control = await Assert.ThrowsAsync<RpcException>(() =>
            new BackupAgent.BackupAgentClient(socketChannel).GetStatusAsync(new GetStatusRequest()).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, control.StatusCode);
        Assert.Contains("serves WalArchive only", control.Status.Detail);

        // PostgreSQL's own user (the agent's) still archives: a switch is archived through the socket.
        await env.Postgres.ExecuteAsync("select pg_switch_wal()");

        // Let other users reach the socket's directory, so that only the agent's peer check stands in the way.
        File.SetUnixFileMode(env.Directory.Path, File.GetUnixFileMode(env.Directory.Path) | UnixFileMode.OtherExecute);
        var segment = Directory.EnumerateFiles(Path.Combine(env.Postgres.DataDirectory, "pg_wal")).First(f => Path.GetFileName(f).Length == 24);
        var result = await OsCommand.RunAsync("setpriv",
            ["--reuid=nobody", "--regid=nogroup", "--clear-groups", HarnessPaths.ArchiveClient, "--socket", env.Agent.ArchiveSocket, "push", segment],
            new CommandOptions { Timeout = TimeSpan.FromSeconds(30) });
        Assert.NotEqual(0, result.ExitCode);
        await AgentTestExtensions.WaitUntilAsync(() => Task.FromResult(File.ReadAllText(env.Agent.LogFile).Contains(
            $"refused a connection from uid {nobody.Uid}", StringComparison.Ordinal)), TimeSpan.FromSeconds(5), () => "the refusal in the log");
    }

    [Fact]
    public async Task Replies_CutLongInputAndEscapeControlCharacters_OnEveryMethod()
    {
        await using var env = await TestEnvironment.CreateAsync(new TestEnvironmentOptions { StartPostgres = false });
        var huge = new string('x', 1 << 20);
        const string tricky = "evil\u202Etxt.exe\nInjected: line\r\u0007";
        var service = AgentReflection.Descriptor.Services.Single(s => s.Name == "BackupAgent");
        var invoker = env.Agent.Channel.CreateCallInvoker();
        foreach (var method in service.Methods)
        {
            foreach (var value in new[] { huge, tricky })
            {
                var request = method.InputType.Parser.ParseFrom(ByteString.Empty);
                foreach (var field in method.InputType.Fields.InFieldNumberOrder().Where(f => f.FieldType == FieldType.String))
                {
                    if (field.IsRepeated)
                    {
                        ((System.Collections.IList)field.Accessor.GetValue(request)).Add(value);
                    }
                    else
                    {
                        field.Accessor.SetValue(request, value);
                    }
                }

                var (code, texts) = await CallForTextsAsync(invoker, method, request.ToByteArray());
                foreach (var text in texts)
                {
                    Assert.DoesNotContain(new string('x', 65), text);
                    Assert.False(text.Any(c => char.IsControl(c) || c == '\u202E'), $"{method.Name} ({code}) replied with a raw control character: {text[..Math.Min(200, text.Length)]}");
                }
            }
        }
    }

    private static Task<CommandResult> RunCliAsync(params string[] args) =>
        OsCommand.RunAsync(HarnessPaths.Cli.Program, [.. HarnessPaths.Cli.Arguments, .. args], new CommandOptions { Timeout = TimeSpan.FromSeconds(30) });

    private static BackupAgent.BackupAgentClient Client(TestEnvironment env, string token) =>
        new(new ClientSecurity(Token: token).CreateInvoker(env.Agent.Channel));

    private static async Task<StatusCode> CallAsync(CallInvoker invoker, MethodDescriptor method, byte[] body) =>
        (await CallForTextsAsync(invoker, method, body)).Code;

    /// <summary>Calls a method with raw bytes; returns the status and every text the caller sees (detail, trailers, reply).</summary>
    private static async Task<(StatusCode Code, List<string> Texts)> CallForTextsAsync(CallInvoker invoker, MethodDescriptor method, byte[] body)
    {
        var marshaller = Marshallers.Create(b => b, b => b);
        var type = method.IsServerStreaming ? MethodType.ServerStreaming : MethodType.Unary;
        var grpcMethod = new Method<byte[], byte[]>(type, method.Service.FullName, method.Name, marshaller, marshaller);
        var options = new CallOptions(deadline: DateTime.UtcNow.AddSeconds(20));
        var texts = new List<string>();
        try
        {
            if (method.IsServerStreaming)
            {
                using var call = invoker.AsyncServerStreamingCall(grpcMethod, null, options, body);
                while (await call.ResponseStream.MoveNext(CancellationToken.None))
                {
                    texts.Add(method.OutputType.Parser.ParseFrom(call.ResponseStream.Current).ToString()!);
                }
            }
            else
            {
                var reply = await invoker.AsyncUnaryCall(grpcMethod, null, options, body);
                texts.Add(method.OutputType.Parser.ParseFrom(reply).ToString()!);
            }

            return (StatusCode.OK, texts);
        }
        catch (RpcException ex)
        {
            texts.Add(ex.Status.Detail);
            texts.AddRange(ex.Trailers.Where(t => !t.IsBinary).Select(t => t.Value));
            return (ex.StatusCode, texts);
        }
    }
}
