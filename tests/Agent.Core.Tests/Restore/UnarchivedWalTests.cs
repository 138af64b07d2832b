using System.Buffers.Binary;
using Backrest.Agent.Core.Restore;

namespace Backrest.Agent.Core.Tests.Restore;

public class UnarchivedWalTests
{
    private const int SegmentSize = 16 * 1024 * 1024;

    [Fact]
    public void Find_SkipsArchivedAndRecycledSegments_KeepsWrittenOnes()
    {
        var data = Directory.CreateTempSubdirectory("wal-");
        try
        {
            var wal = Directory.CreateDirectory(Path.Combine(data.FullName, "pg_wal"));
            var status = Directory.CreateDirectory(Path.Combine(wal.FullName, "archive_status"));
            // Segment 0x2F of log 0 starts at LSN 0x2F000000 (16 MiB segments).
            WriteSegment(wal.FullName, "00000001000000000000002E", 0x2E000000);
            File.WriteAllText(Path.Combine(status.FullName, "00000001000000000000002E.done"), "");
            WriteSegment(wal.FullName, "00000001000000000000002F", 0x2F000000);       // .ready: never pushed
            File.WriteAllText(Path.Combine(status.FullName, "00000001000000000000002F.ready"), "");
            WriteSegment(wal.FullName, "000000010000000000000030", 0x30000000);       // in progress
            WriteSegment(wal.FullName, "000000010000000000000031", 0x12000000);       // recycled old segment
            WriteSegment(wal.FullName, "000000010000000100000002", 0x1_02000000);     // log 1, written

            var found = UnarchivedWal.Find(data.FullName).Select(Path.GetFileName);

            Assert.Equal(["00000001000000000000002F", "000000010000000000000030", "000000010000000100000002"], found);
        }
        finally
        {
            data.Delete(recursive: true);
        }
    }

    [Fact]
    public void SetAsideThenPutBack_RestoresMissingFilesOnly()
    {
        var root = Directory.CreateTempSubdirectory("walpb-");
        try
        {
            var wal = Directory.CreateDirectory(Path.Combine(root.FullName, "data", "pg_wal"));
            WriteSegment(wal.FullName, "000000010000000000000030", 0x30000000);
            var holding = Path.Combine(root.FullName, "holding");
            UnarchivedWal.SetAside(UnarchivedWal.Find(Path.Combine(root.FullName, "data")), holding);
            File.Delete(Path.Combine(wal.FullName, "000000010000000000000030"));

            Assert.Equal(1, UnarchivedWal.PutBack(holding, Path.Combine(root.FullName, "data")));
            Assert.Equal(0, UnarchivedWal.PutBack(holding, Path.Combine(root.FullName, "data")));
            Assert.True(UnarchivedWal.HoldsOwnWal(Path.Combine(wal.FullName, "000000010000000000000030"), "000000010000000000000030"));
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    private static void WriteSegment(string directory, string name, ulong pageAddress)
    {
        using var file = File.Create(Path.Combine(directory, name));
        var header = new byte[16];
        BinaryPrimitives.WriteUInt16LittleEndian(header, 0xD110);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(8), pageAddress);
        file.Write(header);
        file.SetLength(SegmentSize);
    }
}
