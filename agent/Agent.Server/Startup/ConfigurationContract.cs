using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Backrest.Agent.Core.Configuration;

namespace Backrest.Agent.Server.Startup;

/// <summary>
/// The "Agent" section checked against <see cref="AgentOptions"/> before it is bound: every key must name an option
/// (a typo such as RetentionFul would otherwise be ignored in silence: it is reported) and every value must convert to the option's
/// type (the binder would throw with a stack trace). Errors name the full key, as the validator's do.
/// </summary>
internal static partial class ConfigurationContract
{
    /// <summary>Errors (a value of the wrong type: start-up stops) and warnings (a key that names no option: it is
    /// reported and ignored, so that a setting meant for a newer agent does not stop an older one).</summary>
    public static (IReadOnlyList<string> Errors, IReadOnlyList<string> Warnings) Check(IConfigurationSection section)
    {
        var errors = new List<string>();
        var warnings = new List<string>();
        CheckNode(section, typeof(AgentOptions), errors, warnings);
        return (errors, warnings);
    }

    /// <summary>Binds the section; call after <see cref="Check"/> found nothing.</summary>
    public static AgentOptions Bind(IConfigurationSection section) => section.Get<AgentOptions>() ?? new AgentOptions();

    /// <summary>The effective options as JSON, every secret replaced by "(redacted)".</summary>
    public static string ShowRedacted(AgentOptions options)
    {
        var json = JsonSerializer.SerializeToNode(options, OptionsJson.Default.AgentOptions)!;
        Redact(json);
        return new JsonObject { [AgentOptions.SectionName] = json }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Secret values by option name: keys, key secrets, passphrases, tokens, SAS, passwords (not the *File
    /// paths that point at them, nor *Type/*Id settings).</summary>
    public static bool IsSecret(string optionName) => SecretName().IsMatch(optionName);

    private static void Redact(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var (name, child) in obj.ToList())
                {
                    if (child is JsonValue && IsSecret(name))
                    {
                        obj[name] = "(redacted)";
                    }
                    else
                    {
                        Redact(child);
                    }
                }

                break;
            case JsonArray array:
                foreach (var child in array)
                {
                    Redact(child);
                }

                break;
        }
    }

    // The options types live in Agent.Core, which Agent.Server.csproj roots for trimming and NativeAOT (TrimmerRootAssembly):
    // every property the walk below reads is kept.
    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "Agent.Core is a trimmer root assembly.")]
    private static void CheckNode(IConfigurationSection section, Type type, List<string> errors, List<string> warnings)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (IsLeaf(type))
        {
            if (section.GetChildren().Any())
            {
                errors.Add($"{section.Path} is a single value, not a section.");
            }
            else if (section.Value is { } value && value.Length > 0 && !Converts(type, value))
            {
                errors.Add($"{section.Path} '{Shorten(value)}' is not {Describe(type)}.");
            }

            return;
        }

        if (ElementType(type) is { } element)
        {
            foreach (var child in section.GetChildren())
            {
                if (!int.TryParse(child.Key, NumberStyles.None, CultureInfo.InvariantCulture, out _))
                {
                    errors.Add($"{child.Path}: '{child.Key}' is not a list index (use {section.Path}:0, {section.Path}:1, ...).");
                    continue;
                }

                CheckNode(child, element, errors, warnings);
            }

            return;
        }

        if (DictionaryValueType(type) is { } valueType)
        {
            foreach (var child in section.GetChildren())
            {
                CheckNode(child, valueType, errors, warnings);
            }

            return;
        }

        var properties = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite || !IsLeaf(p.PropertyType))
            .ToDictionary(p => p.Name, StringComparer.OrdinalIgnoreCase);
        foreach (var child in section.GetChildren())
        {
            if (properties.TryGetValue(child.Key, out var property))
            {
                CheckNode(child, property.PropertyType, errors, warnings);
            }
            else
            {
                var known = string.Join(", ", properties.Keys.Order(StringComparer.Ordinal));
                warnings.Add($"{child.Path} is not a setting and is ignored (known under {section.Path}: {known}).");
            }
        }
    }

    private static bool IsLeaf(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan)
        || type == typeof(DateTimeOffset) || type == typeof(Uri);

    private static Type? ElementType(Type type) =>
        type.IsArray ? type.GetElementType()
        : type.IsGenericType && type.GetGenericTypeDefinition() is var d
          && (d == typeof(List<>) || d == typeof(IList<>) || d == typeof(IReadOnlyList<>) || d == typeof(IEnumerable<>))
            ? type.GetGenericArguments()[0]
            : null;

    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "Agent.Core is a trimmer root assembly.")]
    private static Type? DictionaryValueType(Type type) =>
        type.GetInterfaces().Append(type)
            .FirstOrDefault(i => i.IsGenericType && (i.GetGenericTypeDefinition() == typeof(IDictionary<,>)
                                                      || i.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>)))
            ?.GetGenericArguments()[1];

    // Only leaf types reach here (IsLeaf): primitives, enums, string, decimal, TimeSpan, DateTimeOffset, Uri, whose
    // converters are built in.
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Built-in converters of leaf types.")]
    [UnconditionalSuppressMessage("Trimming", "IL2067", Justification = "Built-in converters of leaf types.")]
    private static bool Converts(Type type, string value)
    {
        try
        {
            TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value);
            return true;
        }
        catch (Exception ex) when (ex is FormatException or NotSupportedException or ArgumentException or OverflowException
                                       || ex.InnerException is FormatException or OverflowException)
        {
            return false;
        }
    }

    private static string Describe(Type type) =>
        type == typeof(bool) ? "true or false"
        : type == typeof(int) || type == typeof(long) ? "a whole number"
        : type == typeof(double) ? "a number"
        : type == typeof(TimeSpan) ? "a duration like 00:00:30"
        : type.IsEnum ? "one of " + string.Join(", ", Enum.GetNames(type))
        : "a valid " + type.Name;

    // The value is the user's own input, but it may be a mistyped secret: show only its start.
    private static string Shorten(string value) => value.Length <= 16 ? value : value[..16] + "...";

    [GeneratedRegex(@"^(?!.*(File|Type|Id|Style|Path)$).*(Key|KeySecret|Secret|Passphrase|Pass|Token|Sas|Password)$", RegexOptions.IgnoreCase)]
    private static partial Regex SecretName();
}

/// <summary>config show's JSON, generated at build time (no reflection: works trimmed and under NativeAOT).</summary>
[System.Text.Json.Serialization.JsonSourceGenerationOptions(WriteIndented = true)]
[System.Text.Json.Serialization.JsonSerializable(typeof(AgentOptions))]
internal sealed partial class OptionsJson : System.Text.Json.Serialization.JsonSerializerContext;
