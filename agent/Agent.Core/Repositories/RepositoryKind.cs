using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Core.Repositories;

/// <summary>
/// One repository kind (posix, s3, gcs, azure): its options' validation, its pgbackrest.conf lines and its reachability
/// probe. Adding a kind adds one class here; the validator, the conf renderer and the status cache only ask this type.
/// </summary>
public abstract class RepositoryKind
{
    public static readonly IReadOnlyList<RepositoryKind> All =
        [new PosixRepository(), new S3Repository(), new GcsRepository(), new AzureRepository()];

    private static readonly string[] CipherTypes = ["none", "aes-256-cbc"];

    /// <summary>pgBackRest's repo-type value.</summary>
    public abstract string Type { get; }

    /// <summary>The kind named by a repository's Type; null when unknown (validation reports it).</summary>
    public static RepositoryKind? Find(string type) => All.FirstOrDefault(k => k.Type == type);

    /// <summary>The configured kind of a validated repository.</summary>
    public static RepositoryKind Of(RepositoryOptions repo) =>
        Find(repo.Type) ?? throw new InvalidOperationException($"Repository type '{repo.Type}' passed validation but is unknown.");

    /// <summary>The configuration key of the repository at this list index: Agent:Repositories:0.</summary>
    public static string KeyOf(int index) => $"{AgentOptions.SectionName}:Repositories:{index}";

    /// <summary>Every error in the repository's settings, each naming its key (<paramref name="at"/> is its <see cref="KeyOf"/>).</summary>
    public void Validate(RepositoryOptions repo, string at, bool blockIncrementalForced, List<string> errors)
    {
        Retention.RetentionPolicy.Validate(errors, at, repo);

        if (blockIncrementalForced && repo.Bundle == false)
        {
            errors.Add($"{at}:Bundle is false but Agent:PgBackRest:BlockIncremental needs bundling: enable Bundle or disable BlockIncremental.");
        }

        var cipher = repo.CipherType ?? "none";
        if (!CipherTypes.Contains(cipher))
        {
            errors.Add($"{at}:CipherType '{cipher}' is unknown (use none or aes-256-cbc).");
        }
        else if (cipher == "none" && (repo.CipherPass ?? repo.CipherPassFile) is not null)
        {
            errors.Add($"{at}:CipherPass is set but {at}:CipherType is none: set CipherType=aes-256-cbc or remove the passphrase.");
        }
        else if (cipher != "none")
        {
            Secret.Validate(errors, $"{at}:CipherPass", repo.CipherPass, repo.CipherPassFile, required: true);
        }

        if (repo.CaFile is { } caFile)
        {
            if (this is PosixRepository)
            {
                errors.Add($"{at}:CaFile applies to object stores (s3, gcs, azure), not to a posix repository.");
            }
            else
            {
                Secret.ValidateFile(errors, $"{at}:CaFile", caFile);
            }
        }

        ValidateKind(repo, at, errors);
    }

    /// <summary>
    /// The repository's pgbackrest.conf lines (<c>repoN-...</c>), with secrets read now from their settings or files:
    /// the renderer calls this before every pgBackRest run, so a rotated secret file is used at once.
    /// </summary>
    public IEnumerable<(string Key, string Value)> ConfLines(int repoKey, RepositoryOptions repo, string at, bool blockIncremental)
    {
        var p = $"repo{repoKey}-";
        yield return (p + "type", Type);
        yield return (p + "path", repo.Path);
        foreach (var line in Retention.RetentionPolicy.ConfigLines(repoKey, repo))
        {
            yield return line;
        }

        if (blockIncremental)
        {
            yield return (p + "bundle", "y");
            yield return (p + "block", "y");
        }
        else if (repo.Bundle is { } bundle)
        {
            yield return (p + "bundle", bundle ? "y" : "n");
        }

        if (repo.CipherType is { } cipher && cipher != "none")
        {
            yield return (p + "cipher-type", cipher);
            yield return (p + "cipher-pass", Secret.Read($"{at}:CipherPass", repo.CipherPass, repo.CipherPassFile)!);
        }

        if (repo.CaFile is { } caFile)
        {
            yield return (p + "storage-ca-file", caFile);
        }

        foreach (var (key, value) in KindLines(repo, at))
        {
            yield return (p + key, value);
        }
    }

    /// <summary>The secret values configured now, so that messages can be scrubbed of them.</summary>
    public IEnumerable<string> SecretValues(RepositoryOptions repo, string at)
    {
        var values = KindSecrets(repo, at).Append(SafeRead($"{at}:CipherPass", repo.CipherPass, repo.CipherPassFile));
        return values.Where(v => !string.IsNullOrEmpty(v)).Select(v => v!);
    }

    /// <summary>
    /// Lists one object under the repository's path (posix: the directory, its writability and free space), within
    /// <paramref name="timeout"/>. Never throws: every failure is a result with its error class and the provider's message.
    /// </summary>
    public async Task<ProbeResult> ProbeAsync(RepositoryOptions repo, string at, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        ProbeResult result;
        try
        {
            // The SDKs do some work synchronously (name resolution, credential loading): keep it off the caller's thread.
            var outcome = await Task.Run(() => ProbeKindAsync(repo, at, timeout, deadline.Token), deadline.Token)
                .WaitAsync(deadline.Token).ConfigureAwait(false);
            result = new ProbeResult(true, time.GetElapsedTime(started), null, outcome.Message, outcome.FreeBytes, time.GetUtcNow());
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            result = new ProbeResult(false, time.GetElapsedTime(started), ProbeErrorClass.Timeout,
                $"no answer within {timeout.TotalSeconds:0.#} s", null, time.GetUtcNow());
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            var (errorClass, message) = ProbeErrors.Classify(ex);
            result = new ProbeResult(false, time.GetElapsedTime(started), errorClass, message, null, time.GetUtcNow());
        }

        return result with { Message = Scrub(result.Message, SecretValues(repo, at)) };
    }

    /// <summary>Replaces every secret in a message (the providers sometimes echo a key or a signed URL).</summary>
    public static string? Scrub(string? message, IEnumerable<string> secrets)
    {
        if (message is null)
        {
            return null;
        }

        foreach (var secret in secrets.Where(s => s.Length >= 4).OrderByDescending(s => s.Length))
        {
            message = message.Replace(secret, "(redacted)", StringComparison.Ordinal);
        }

        return message;
    }

    /// <summary>
    /// The object <paramref name="name"/> under the repository's path (posix: a file below the directory), for conditional
    /// writes; calls fail after <paramref name="timeout"/>. Throws the provider's exception on failure.
    /// </summary>
    public abstract ILeaseObject OpenLeaseObject(RepositoryOptions repo, string at, string name, TimeSpan timeout);

    protected abstract void ValidateKind(RepositoryOptions repo, string at, List<string> errors);

    protected abstract IEnumerable<(string Key, string Value)> KindLines(RepositoryOptions repo, string at);

    protected virtual IEnumerable<string?> KindSecrets(RepositoryOptions repo, string at) => [];

    /// <summary>The kind's probe; throws the provider's exception on failure.</summary>
    protected abstract Task<ProbeOutcome> ProbeKindAsync(RepositoryOptions repo, string at, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Reads a secret for scrubbing only: an unreadable file is not this caller's error to report.</summary>
    protected static string? SafeRead(string key, string? value, string? file)
    {
        try
        {
            return Secret.Read(key, value, file);
        }
        catch (AgentException)
        {
            return null;
        }
    }

    /// <summary>The object-name prefix of a repository path inside a bucket or container: "/pg/repo" is "pg/repo/".</summary>
    protected static string Prefix(string path)
    {
        var trimmed = path.Trim('/');
        return trimmed.Length == 0 ? "" : trimmed + "/";
    }

    protected static void Require(List<string> errors, string key, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            errors.Add($"{key} is required.");
        }
    }

    protected static void OneOf(List<string> errors, string key, string value, params string[] allowed)
    {
        if (!allowed.Contains(value))
        {
            errors.Add($"{key} '{value}' is not valid (use {string.Join(" or ", allowed)}).");
        }
    }

    protected static void ObjectStorePath(List<string> errors, string at, string path)
    {
        if (!path.StartsWith('/'))
        {
            errors.Add($"{at}:Path '{path}' must start with '/' (the prefix inside the bucket or container).");
        }
    }

    protected static void Port(List<string> errors, string key, int? port)
    {
        if (port is < 1 or > 65535)
        {
            errors.Add($"{key} must be between 1 and 65535 (got {port}).");
        }
    }

    /// <summary>pgBackRest takes a host name (and, for GCS, a port): no scheme, no path.</summary>
    protected static void HostEndpoint(List<string> errors, string key, string? endpoint)
    {
        if (endpoint is not null && (endpoint.Contains("://", StringComparison.Ordinal) || endpoint.Contains('/') || endpoint.Any(char.IsWhiteSpace)))
        {
            errors.Add($"{key} '{endpoint}' must be a host name such as s3.eu-west-1.amazonaws.com, without scheme or path.");
        }
    }
}

/// <summary>What a successful probe learned besides "reachable".</summary>
public sealed record ProbeOutcome(string? Message, long? FreeBytes = null);
