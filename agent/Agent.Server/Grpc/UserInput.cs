using System.Text;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Backrest.Agent.Server.Grpc;

/// <summary>
/// Makes an error text safe to send back: a value from the request that the text quotes is cut to
/// <see cref="QuotedPrefix"/> characters, and control and bidirectional-override characters (a raw newline, U+202E)
/// are written as \uXXXX, so a reply can neither carry a caller's megabyte back nor reorder what a person reads.
/// </summary>
internal static class UserInput
{
    internal const int QuotedPrefix = 64;

    public static string Sanitize(string text, IMessage? request)
    {
        if (request is not null)
        {
            foreach (var value in LongStrings(request))
            {
                text = CutQuoted(text, value);
            }
        }

        return Escape(text);
    }

    /// <summary>Each place the text repeats a long value (whole or cut by the message itself) becomes its short prefix.</summary>
    internal static string CutQuoted(string text, string value)
    {
        var head = value[..(QuotedPrefix + 1)];
        var result = new StringBuilder();
        var from = 0;
        for (var at = text.IndexOf(head, StringComparison.Ordinal); at >= 0; at = text.IndexOf(head, from, StringComparison.Ordinal))
        {
            var length = QuotedPrefix + 1;
            while (at + length < text.Length && length < value.Length && text[at + length] == value[length])
            {
                length++;
            }

            result.Append(text, from, at - from).Append(value, 0, QuotedPrefix).Append($"...({value.Length} characters)");
            from = at + length;
        }

        return from == 0 ? text : result.Append(text, from, text.Length - from).ToString();
    }

    internal static string Escape(string text)
    {
        if (!text.Any(NeedsEscape))
        {
            return text;
        }

        var result = new StringBuilder(text.Length + 16);
        foreach (var c in text)
        {
            if (NeedsEscape(c))
            {
                result.Append($"\\u{(int)c:X4}");
            }
            else
            {
                result.Append(c);
            }
        }

        return result.ToString();
    }

    private static bool NeedsEscape(char c) =>
        char.IsControl(c)
        || c is '\u061C' or '\u200E' or '\u200F' or (>= '\u202A' and <= '\u202E') or (>= '\u2066' and <= '\u2069')
        || c is '\u2028' or '\u2029';

    private static IEnumerable<string> LongStrings(IMessage message)
    {
        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            var value = field.Accessor.GetValue(message);
            switch (field.FieldType)
            {
                case FieldType.String when field.IsRepeated:
                    foreach (var item in ((System.Collections.IEnumerable)value).OfType<string>().Where(s => s.Length > QuotedPrefix))
                    {
                        yield return item;
                    }

                    break;
                case FieldType.String when value is string { Length: > QuotedPrefix } text:
                    yield return text;
                    break;
                case FieldType.Message when !field.IsRepeated && !field.IsMap && value is IMessage nested:
                    foreach (var text in LongStrings(nested))
                    {
                        yield return text;
                    }

                    break;
            }
        }
    }
}
