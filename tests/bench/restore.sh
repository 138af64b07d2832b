#!/usr/bin/env bash
# Restore wall time through the agent vs `pgbackrest restore` directly, and delta vs full restore.
#
#   tests/bench/restore.sh            # RUNS=3 SCALE=50
#   RUNS=1 SCALE=5 KEEP=1 tests/bench/restore.sh
#
# (1) One full backup of pgbench scale SCALE (through the agent). Then RUNS times, alternating the order:
#       agent:  backrestctl restore --data-directory NEW --wait                       (end to end, CLI included)
#       direct: pgbackrest --config=<agent conf> --stanza=demo restore --repo=1 --pg1-path=NEW --archive-mode=off
#     (--archive-mode=off is what the agent passes for a new directory.) Target: median of the per-run ratios
#     <= 1.05 (each run pairs the two back to back, so the drift of a noisy machine cancels out).
# (2) Delta vs full, through the agent: restore into A, start it; then RUNS times: a small change in the source
#     (update 1000 rows) + incr backup, then time a delta restore into A (--delta; A is stopped, has run and
#     diverged) vs a full restore into an empty dir B. Informational ratio delta / full.
# Every restored copy is started on a free port and must return count(*) = SCALE * 100000 from
# pgbench_accounts, and the source's count, sum(abalance) and sum of row hashes at backup time.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-3}
SCALE=${SCALE:-50}
TARGET=1.05

bench_pgbench_cluster "$SCALE"
db_size=$(psql_q "$PGPORT" "select pg_size_pretty(pg_database_size('postgres'))")
EXPECTED_COUNT=$((SCALE * 100000))

agent_start agent "$DATA" "$PGPORT"
pg_set_archive_command "$PGPORT" "$(agent_archive_command "$AGENT_SOCK")"
ctl "$AGENT_PORT" stanza-create >/dev/null
# Some updates first, so that sum(abalance) and the row hash check real values.
as_pg "$PGBIN/pgbench" -h "$BENCH_DIR" -p "$PGPORT" -n -c 2 -T 5 postgres >"$BENCH_DIR/pgbench-tpcb.log" 2>&1
log "full backup"
ctl "$AGENT_PORT" backup --type full --wait >"$BENCH_DIR/backup-full.log" 2>&1
source_sum() { accounts_checksum "$PGPORT"; }
EXPECTED="$(source_sum)"
RESTORES=$(bench_mkdir restores)

# verify_copy DIR EXPECTED: start the copy on a free port, wait for promotion, compare, stop it.
verify_copy() {
    local dir=$1 expected=$2 port got
    port=$(free_port)
    pg_start "$dir" "$port"
    pg_wait_promoted "$port"
    got=$(accounts_checksum "$port")
    pg_stop "$dir"
    if [[ $got != "$expected" ]]; then
        die "restored copy $dir: pgbench_accounts count/sum/hash = '$got', expected '$expected'"
    fi
    [[ ${got%% *} == "$EXPECTED_COUNT" ]] || die "restored copy $dir: count ${got%% *}, expected $EXPECTED_COUNT"
}

agent_times=()
direct_times=()
agent_own=()    # pgBackRest's own duration (its log) inside each wall time
direct_own=()
run_agent() {
    local dir=$RESTORES/agent-$1 t0
    t0=$(now_ns)
    ctl "$AGENT_PORT" restore --data-directory "$dir" --wait >"$BENCH_DIR/restore-agent-$1.log" 2>&1 \
        || { cat "$BENCH_DIR/restore-agent-$1.log" >&2; die "restore through the agent failed"; }
    agent_times+=("$(elapsed_s "$t0")")
    agent_own+=("$(pgbr_log_seconds "$AGENT_HOME/log/demo-restore.log")")
    verify_copy "$dir" "$EXPECTED"
    rm -rf "$dir"
}
run_direct() {
    local dir=$RESTORES/direct-$1 t0
    t0=$(now_ns)
    pgbr "$AGENT_CONF" restore --repo=1 --pg1-path="$dir" --archive-mode=off >"$BENCH_DIR/restore-direct-$1.log" 2>&1 \
        || { cat "$BENCH_DIR/restore-direct-$1.log" >&2; die "direct pgbackrest restore failed"; }
    direct_times+=("$(elapsed_s "$t0")")
    direct_own+=("$(pgbr_log_seconds "$AGENT_HOME/log/demo-restore.log")")
    verify_copy "$dir" "$EXPECTED"
    rm -rf "$dir"
}

log "warm-up restore (untimed)"
ctl "$AGENT_PORT" restore --data-directory "$RESTORES/warmup" --wait >"$BENCH_DIR/restore-warmup.log" 2>&1
rm -rf "$RESTORES/warmup"
for ((r = 1; r <= RUNS; r++)); do
    if ((r % 2)); then run_agent "$r"; run_direct "$r"; else run_direct "$r"; run_agent "$r"; fi
    log "restore run $r/$RUNS: agent ${agent_times[-1]} s, direct ${direct_times[-1]} s (both copies verified)"
done

# ---------------------------------------------------------------------------------------------- delta vs full
A=$RESTORES/A
log "delta: restoring A and starting it once"
ctl "$AGENT_PORT" restore --data-directory "$A" --wait >"$BENCH_DIR/restore-A.log" 2>&1
verify_copy "$A" "$EXPECTED"
delta_times=()
full_times=()
for ((r = 1; r <= RUNS; r++)); do
    psql_q "$PGPORT" "update pgbench_accounts set abalance = abalance + 1 where aid <= 1000" "checkpoint" >/dev/null
    ctl "$AGENT_PORT" backup --type incr --wait >"$BENCH_DIR/backup-incr-$r.log" 2>&1 \
        || { cat "$BENCH_DIR/backup-incr-$r.log" >&2; die "incr backup failed"; }
    expected_now="$(source_sum)"
    B=$RESTORES/B-$r
    t0=$(now_ns)
    ctl "$AGENT_PORT" restore --data-directory "$A" --delta --wait >"$BENCH_DIR/restore-delta-$r.log" 2>&1 \
        || { cat "$BENCH_DIR/restore-delta-$r.log" >&2; die "delta restore failed"; }
    delta_times+=("$(elapsed_s "$t0")")
    t0=$(now_ns)
    ctl "$AGENT_PORT" restore --data-directory "$B" --wait >"$BENCH_DIR/restore-B-$r.log" 2>&1 \
        || { cat "$BENCH_DIR/restore-B-$r.log" >&2; die "full restore into B failed"; }
    full_times+=("$(elapsed_s "$t0")")
    verify_copy "$A" "$expected_now"
    verify_copy "$B" "$expected_now"
    rm -rf "$B"
    log "delta run $r/$RUNS: delta into A ${delta_times[-1]} s, full into empty B ${full_times[-1]} s (both verified)"
done

agent_vs_direct_stats
delta_med=$(median "${delta_times[@]}")
full_med=$(median "${full_times[@]}")

echo
echo "== Restore into a new directory: agent vs direct pgBackRest (pgbench scale $SCALE, database $db_size, $RUNS runs)"
print_agent_vs_direct 40
echo "== Delta restore (A: restored, started, stopped; 1000 rows changed + incr) vs full restore into empty B, through the agent"
printf '%-40s %s\n' "delta runs (s)" "${delta_times[*]}"
printf '%-40s %s\n' "full runs (s)" "${full_times[*]}"
printf '%-40s %10s\n' "delta median (s)" "$delta_med"
printf '%-40s %10s\n' "full median (s)" "$full_med"
printf '%-40s %10s\n' "ratio delta / full" "$(calc "$delta_med / $full_med")"
printf '%-40s %s\n' "restored copies verified" "all (count = $EXPECTED_COUNT; count, sum(abalance), row hash = source's)"
printf '%-40s %s\n' "load average at the end" "$(bench_loadavg)"
