using Backrest.Agent.Core.Drills;

namespace Backrest.Agent.Core.Tests.Drills;

public class RecoveryLogTests
{
    [Fact]
    public void EndOfRecovery_Postgres15Log_RedoLsnAndLastTransactionTime()
    {
        string[] log =
        [
            "2026-12-05 05:40:02.100 UTC [812] LOG:  starting point-in-time recovery to earliest consistent point",
            "2026-12-05 05:40:02.900 UTC [812] LOG:  redo done at 0/5000110 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.31 s",
            "2026-12-05 05:40:02.900 UTC [812] LOG:  last completed transaction was at log time 2026-12-05 05:39:58.123456+00",
            "2026-12-05 05:40:03.000 UTC [812] LOG:  selected new timeline ID: 2",
        ];

        var (lsn, at) = RecoveryLog.EndOfRecovery(log);

        Assert.Equal("0/5000110", lsn);
        Assert.Equal(new DateTimeOffset(2026, 12, 5, 5, 39, 58, TimeSpan.Zero).AddTicks(1234560), at);
    }

    [Fact]
    public void EndOfRecovery_NoTransactionReplayed_TimeUnknown()
    {
        var (lsn, at) = RecoveryLog.EndOfRecovery(["LOG:  redo done at 1/A0000028 system usage: CPU: user: 0.00 s"]);

        Assert.Equal(("1/A0000028", (DateTimeOffset?)null), (lsn, at));
    }
}
