using Spectre.Console;
using Spectre.Console.Rendering;

namespace Backrest.Agent.Cli;

internal sealed record TableColumn(string Header, bool RightAligned = false);

/// <summary>
/// A table: Spectre's on a terminal wide enough for it, plain space-aligned columns otherwise (grep, awk and logs
/// read those, and a terminal wraps whole lines instead of breaking backup labels and WAL names inside cells).
/// </summary>
internal static class TableOutput
{
    public static void Write(Output output, IReadOnlyList<TableColumn> columns, IReadOnlyList<string[]> rows)
    {
        var widths = columns
            .Select((column, i) => rows.Select(row => row[i].Length).Append(column.Header.Length).Max())
            .ToArray();

        // Rounded border: one padding space each side of a cell plus one border character per column, plus the last.
        var tableWidth = widths.Sum() + (3 * columns.Count) + 1;
        if (output.IsTerminal && tableWidth <= output.Console.Profile.Width)
        {
            var table = new Table().Border(TableBorder.Rounded);
            foreach (var column in columns)
            {
                var tableColumn = new Spectre.Console.TableColumn(new Text(column.Header, new Style(decoration: Decoration.Bold)));
                table.AddColumn(column.RightAligned ? tableColumn.RightAligned() : tableColumn.LeftAligned());
            }

            foreach (var row in rows)
            {
                table.AddRow([.. row.Select(cell => (IRenderable)new Text(cell))]);
            }

            output.Console.Write(table);
            return;
        }

        output.Out.WriteLine(FormatRow([.. columns.Select(c => c.Header)]));
        foreach (var row in rows)
        {
            output.Out.WriteLine(FormatRow(row));
        }

        string FormatRow(string[] cells) => string.Join(
            "  ",
            cells.Select((cell, i) => columns[i].RightAligned ? cell.PadLeft(widths[i]) : cell.PadRight(widths[i])))
            .TrimEnd();
    }
}
