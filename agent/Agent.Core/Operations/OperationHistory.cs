using System.Text.Json;
using System.Text.Json.Serialization;

namespace Backrest.Agent.Core.Operations;

/// <summary>One line of the operation history: what ran, who asked, how it ended. No progress; of the results only the
/// backup label and the figures of verifies and drills (small, and what recoverability alerts read).</summary>
public sealed record OperationRecord(
    string Id,
    OperationKind Kind,
    string Description,
    OperationTrigger Trigger,
    OperationState State,
    DateTimeOffset Started,
    DateTimeOffset? Finished,
    OperationError? Error,
    string? BackupLabel,
    IReadOnlyList<string> Warnings)
{
    /// <summary>A verify's reports, kept whole: status and metrics show the last verify of each repository after a restart.</summary>
    public Verify.VerifyOutcome? Verify { get; init; }

    /// <summary>A drill's figures (recovery time, where recovery stopped, the check row), kept for the same reason.</summary>
    public Drills.DrillOutcome? Drill { get; init; }

    public static OperationRecord From(OperationSnapshot s) =>
        new(s.Id, s.Kind, s.Description, s.Trigger, s.State, s.Started, s.Finished, s.Error, s.BackupLabel ?? s.Result?.BackupLabel, s.Warnings)
        {
            Verify = s.Result as Verify.VerifyOutcome,
            Drill = s.Result as Drills.DrillOutcome,
        };

    public OperationSnapshot ToSnapshot() =>
        new(Id, Kind, Description, State, Started, Finished, State == OperationState.Succeeded ? 100 : -1,
            State == OperationState.Succeeded ? "done" : State.ToString().ToLowerInvariant(), Warnings, Error, (OperationResult?)Verify ?? Drill)
        {
            Trigger = Trigger,
            BackupLabel = BackupLabel,
        };
}

/// <summary>
/// The last <see cref="Capacity"/> operations, in a JSON file beside pgBackRest's spool (a volume that survives a container
/// restart), so that an operation id a person was given still answers after the agent restarts. Each change rewrites
/// the file through a temporary file and a rename: a crash leaves the old or the new history, never half of one.
/// </summary>
public sealed class OperationHistory
{
    public const int DefaultCapacity = 200;

    private readonly object _gate = new();
    private readonly string _path;
    private readonly List<OperationRecord> _records; // oldest first

    public OperationHistory(string path, int capacity = DefaultCapacity)
    {
        _path = path;
        Capacity = capacity;
        _records = Load(path);
    }

    public int Capacity { get; }

    public string Path => _path;

    /// <summary>Adds or replaces the record with the snapshot's id, drops the oldest past capacity, and saves.</summary>
    public void Record(OperationSnapshot snapshot)
    {
        var record = OperationRecord.From(snapshot);
        lock (_gate)
        {
            var at = _records.FindIndex(r => r.Id == record.Id);
            if (at >= 0)
            {
                _records[at] = record;
            }
            else
            {
                _records.Add(record);
            }

            if (_records.Count > Capacity)
            {
                _records.RemoveRange(0, _records.Count - Capacity);
            }

            Save();
        }
    }

    public OperationRecord? Find(string id)
    {
        lock (_gate)
        {
            return _records.FindLast(r => r.Id == id);
        }
    }

    /// <summary>Newest first.</summary>
    public IReadOnlyList<OperationRecord> List(int limit)
    {
        lock (_gate)
        {
            return _records.AsEnumerable().Reverse().Take(limit).ToList();
        }
    }

    /// <summary>
    /// Records left running or queued by an agent that stopped without finishing them (killed, or its pod deleted):
    /// they did not end as far as the agent knows, so they are marked failed, saying so.
    /// </summary>
    public IReadOnlyList<OperationRecord> CloseInterrupted(DateTimeOffset now)
    {
        lock (_gate)
        {
            var closed = new List<OperationRecord>();
            for (var i = 0; i < _records.Count; i++)
            {
                if (_records[i].State is OperationState.Running or OperationState.Queued)
                {
                    var queued = _records[i].State == OperationState.Queued;
                    _records[i] = _records[i] with
                    {
                        State = queued ? OperationState.Cancelled : OperationState.Failed,
                        Finished = now,
                        Error = new OperationError(queued ? AgentErrorKind.Cancelled : AgentErrorKind.Aborted,
                            queued ? "The agent stopped before this queued operation could start."
                                   : "The agent stopped while this operation ran (killed or restarted); pgBackRest's work was interrupted.",
                            queued ? "Start it again if it is still needed."
                                   : "List the backups to see what completed, and start the operation again if needed.", 0),
                    };
                    closed.Add(_records[i]);
                }
            }

            if (closed.Count > 0)
            {
                Save();
            }

            return closed;
        }
    }

    private static List<OperationRecord> Load(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize(stream, HistoryJson.Default.ListOperationRecord) ?? [];
        }
        catch (FileNotFoundException)
        {
            return [];
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
        catch (JsonException)
        {
            // A history is a convenience: a damaged file (a full disk at the wrong moment) must not stop the agent.
            File.Move(path, path + ".damaged", overwrite: true);
            return [];
        }
    }

    private void Save()
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(_path)!);
        var temp = $"{_path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp"; // two writers never share a temporary file
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
        {
            JsonSerializer.Serialize(stream, _records, HistoryJson.Default.ListOperationRecord);
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, _path, overwrite: true);
    }
}

[JsonSourceGenerationOptions(WriteIndented = false, UseStringEnumConverter = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(List<OperationRecord>))]
internal sealed partial class HistoryJson : JsonSerializerContext;
