namespace Backrest.Agent.Core.Repositories;

/// <summary>
/// A secret is given either as a setting (an environment variable from a Kubernetes Secret) or as a file (a mounted
/// Secret, which Kubernetes rewrites on rotation). Files are read each time the value is needed, so a rotated secret is
/// used without a restart. The value itself never goes into a message.
/// </summary>
public static class Secret
{
    /// <summary>Start-up checks: not both forms, the file readable, a required secret present.</summary>
    public static void Validate(List<string> errors, string key, string? value, string? file, bool required)
    {
        if (value is not null && file is not null)
        {
            errors.Add($"{key} and {key}File are both set: set one of them.");
            return;
        }

        if (file is not null)
        {
            ValidateFile(errors, key + "File", file);
            return;
        }

        if (value is null or "")
        {
            if (required)
            {
                errors.Add($"{key} (or {key}File, a file holding it) is required.");
            }
        }
        else if (value.IndexOfAny(['\n', '\r']) >= 0)
        {
            errors.Add($"{key} must not contain line breaks.");
        }
    }

    public static void ValidateFile(List<string> errors, string key, string file)
    {
        if (!file.StartsWith('/'))
        {
            errors.Add($"{key} '{file}' must be an absolute path.");
            return;
        }

        try
        {
            using var _ = File.OpenRead(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            errors.Add($"{key} '{file}' cannot be read by the agent: {ex.Message}");
        }
    }

    /// <summary>The secret now: the file's content (without its trailing line break) or the setting. Null when neither is set.</summary>
    public static string? Read(string key, string? value, string? file)
    {
        if (file is null)
        {
            return value;
        }

        string text;
        try
        {
            text = File.ReadAllText(file).TrimEnd('\r', '\n');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw AgentException.FailedPrecondition($"{key}File '{file}' cannot be read: {ex.Message}",
                "Check that the Secret is mounted there and readable by the agent's user.");
        }

        if (text.IndexOfAny(['\n', '\r']) >= 0)
        {
            throw AgentException.FailedPrecondition($"{key}File '{file}' holds more than one line.", "Put only the secret in the file.");
        }

        return text;
    }
}
