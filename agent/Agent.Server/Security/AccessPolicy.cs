using System.Security.Cryptography;
using System.Text;
using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Server.Security;

internal enum Role
{
    Viewer = 1,
    Operator = 2,
}

/// <summary>A caller the agent recognised, and what it may do (null: known, but given no role).</summary>
internal sealed record Caller(string Identity, Role? Role);

/// <summary>
/// Who may call which method. Viewer methods read; every other method, including any added later, needs an operator:
/// a new RPC is closed until it is listed here.
/// </summary>
internal sealed class AccessPolicy
{
    private static readonly HashSet<string> ViewerMethods = new(StringComparer.Ordinal)
    {
        "GetStatus", "ListBackups", "GetRecoveryWindow", "GetOperation", "WatchOperation", "ListOperations", "ListSchedules",
        "GetRole",
    };

    private readonly AgentOptions options;
    private readonly ReloadingFile<Dictionary<string, (string Name, Role Role)>>? tokens;

    public AccessPolicy(AgentOptions options, TimeProvider time)
    {
        this.options = options;
        if (options.Auth.TokensFile is { } path)
        {
            tokens = new ReloadingFile<Dictionary<string, (string, Role)>>([path], p => ParseTokens(File.ReadAllText(p[0]), p[0]), time);
        }
    }

    /// <summary>With neither tokens nor client certificates configured, the port itself is the only gate (loopback or explicit plaintext).</summary>
    public bool Enabled => tokens is not null || options.Tls.ClientCaFile is not null;

    public string Mode => (tokens is not null, options.Tls.ClientCaFile is not null) switch
    {
        (true, true) => "tokens+certificates",
        (true, false) => "tokens",
        (false, true) => "certificates",
        _ => "none",
    };

    public static Role Required(string method) => ViewerMethods.Contains(method) ? Role.Viewer : Role.Operator;

    /// <summary>Loads the token file once at start-up, so a bad file is a configuration error.</summary>
    public IReadOnlyList<string> CheckLoadable()
    {
        try
        {
            _ = tokens?.Value;
            return [];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return [$"Agent:Auth:TokensFile: {ex.Message.TrimEnd('.')}."];
        }
    }

    /// <summary>The caller behind a bearer token, or null when the token is unknown.</summary>
    public Caller? FromToken(string token)
    {
        if (tokens is null)
        {
            return null;
        }

        // Compare in constant time, so response timing does not reveal how much of a guess was right.
        var offered = SHA256.HashData(Encoding.UTF8.GetBytes(token));
        foreach (var (known, entry) in tokens.Value)
        {
            if (CryptographicOperations.FixedTimeEquals(offered, Convert.FromHexString(known)))
            {
                return new Caller($"token:{entry.Name}", entry.Role);
            }
        }

        return null;
    }

    public Caller FromCertificate(string commonName) =>
        new($"cert:{commonName}", options.Auth.CertificateRoles.TryGetValue(commonName, out var role) ? ParseRole(role) : null);

    /// <summary>Lines of <c>ROLE NAME TOKEN</c>; kept as SHA-256 of the token, so the tokens themselves are not held in memory.</summary>
    internal static Dictionary<string, (string Name, Role Role)> ParseTokens(string text, string path)
    {
        var entries = new Dictionary<string, (string, Role)>(StringComparer.Ordinal);
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 3 || ParseRole(parts[0]) is not { } role)
            {
                // Never quote the line: it holds a token.
                throw new FormatException($"{path} line {number} is not 'ROLE NAME TOKEN' with ROLE viewer or operator");
            }

            entries[Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(parts[2])))] = (parts[1], role);
        }

        return entries;
    }

    private static Role? ParseRole(string role) => role switch
    {
        "viewer" => Role.Viewer,
        "operator" => Role.Operator,
        _ => null,
    };
}
