#!/usr/bin/env bash
# Full backup wall time through the agent vs the same `pgbackrest backup` run directly.
#
#   tests/bench/backup.sh            # RUNS=3 SCALE=50
#   RUNS=5 SCALE=10 KEEP=1 tests/bench/backup.sh
#
# Both paths use the agent's rendered pgbackrest.conf (its defaults: zst level 1, process-max = CPUs,
# async archiving) and the same repository and cluster, alternating agent/direct each run.
# Agent wall time = `backrestctl backup --type full --wait`, end to end (CLI start-up included).
# Direct wall time = `pgbackrest --config=<agent conf> --stanza=demo backup --type=full --repo=1` as postgres.
# Target: median of the per-run ratios agent / direct <= 1.05 (each run pairs the two back to back).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
SCALE=${SCALE:-50}
TARGET=1.05

bench_pgbench_cluster "$SCALE"
db_size=$(psql_q "$PGPORT" "select pg_size_pretty(pg_database_size('postgres'))")

agent_start agent "$DATA" "$PGPORT"
pg_set_archive_command "$PGPORT" "$(agent_archive_command "$AGENT_SOCK")"
ctl "$AGENT_PORT" stanza-create >/dev/null

# One untimed backup through each path: warms the page cache and both code paths.
log "warm-up backups"
ctl "$AGENT_PORT" backup --type full --wait >"$BENCH_DIR/warmup-agent.log" 2>&1
pgbr "$AGENT_CONF" backup --type=full --repo=1 >"$BENCH_DIR/warmup-direct.log" 2>&1

agent_times=()
direct_times=()
agent_own=()    # pgBackRest's own duration (its log) inside each wall time
direct_own=()
run_agent() {
    local t0
    psql_q "$PGPORT" checkpoint
    t0=$(now_ns)
    ctl "$AGENT_PORT" backup --type full --wait >"$BENCH_DIR/run$1-agent.log" 2>&1 \
        || { cat "$BENCH_DIR/run$1-agent.log" >&2; die "backup through the agent failed"; }
    agent_times+=("$(elapsed_s "$t0")")
    agent_own+=("$(pgbr_log_seconds "$AGENT_HOME/log/demo-backup.log")")
}
run_direct() {
    local t0
    psql_q "$PGPORT" checkpoint
    t0=$(now_ns)
    pgbr "$AGENT_CONF" backup --type=full --repo=1 >"$BENCH_DIR/run$1-direct.log" 2>&1 \
        || { cat "$BENCH_DIR/run$1-direct.log" >&2; die "direct pgbackrest backup failed"; }
    direct_times+=("$(elapsed_s "$t0")")
    direct_own+=("$(pgbr_log_seconds "$AGENT_HOME/log/demo-backup.log")")
}
for ((r = 1; r <= RUNS; r++)); do
    # Alternate the order so drift (cache, repo growth) does not favour one side.
    if ((r % 2)); then run_agent "$r"; run_direct "$r"; else run_direct "$r"; run_agent "$r"; fi
    log "run $r/$RUNS: agent ${agent_times[-1]} s, direct ${direct_times[-1]} s"
done

agent_vs_direct_stats

echo
echo "== Full backup: agent vs direct pgBackRest (pgbench scale $SCALE, database $db_size, $RUNS runs, same rendered conf)"
print_agent_vs_direct 40
printf '%-40s %s\n' "load average at the end" "$(bench_loadavg)"
