namespace Backrest.Agent.Cli;

/// <summary>Writes "label  value" lines with the values aligned, for the human form of status-like replies.</summary>
internal sealed class TextBlock(TextWriter writer, int labelWidth = 16)
{
    public void Line(string text) => writer.WriteLine(text);

    public void Field(string label, string value, int indent = 1) =>
        writer.WriteLine(new string(' ', indent * 2) + label.PadRight(labelWidth - ((indent - 1) * 2)) + " " + value);

    public void Heading(string label, int indent = 1) => writer.WriteLine(new string(' ', indent * 2) + label);

    public void Item(string text, int indent = 2) => writer.WriteLine(new string(' ', indent * 2) + text);
}
