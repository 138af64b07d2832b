using System.Text;

namespace Backrest.Agent.Core.PgBackRest;

/// <summary>
/// The last lines of a stream, at most <c>limit</c> characters (a single longer line is kept cut to its end). Lines are
/// added from the runtime's reader thread and read once the process ended, hence the lock.
/// </summary>
public sealed class OutputTail(int limit)
{
    /// <summary>64 Ki characters: pgBackRest's error and hint, and the last files it worked on, fit many times over.</summary>
    public const int Limit = 64 * 1024;

    private readonly Queue<string> _lines = new();
    private readonly Lock _lock = new();
    private long _length;

    public void Add(string line)
    {
        if (line.Length + 1 > limit)
        {
            line = line[^(limit - 1)..];
        }

        lock (_lock)
        {
            _lines.Enqueue(line);
            _length += line.Length + 1;
            while (_length > limit)
            {
                _length -= _lines.Dequeue().Length + 1;
            }
        }
    }

    public override string ToString()
    {
        lock (_lock)
        {
            var text = new StringBuilder((int)Math.Min(_length, int.MaxValue));
            foreach (var line in _lines)
            {
                text.Append(line).Append('\n');
            }

            return text.ToString();
        }
    }
}
