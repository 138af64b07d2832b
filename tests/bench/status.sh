#!/usr/bin/env bash
# Status and /metrics latency while every repository is healthy and while one is dead, beside one plain
# `pgbackrest info` run of the same repositories.
#
#   tests/bench/status.sh                 # RUNS=200 IO_TIMEOUT=5
#   RUNS=50 KEEP=1 tests/bench/status.sh
#
# A small cluster (pgbench scale 1) with one full backup in repo1 (posix).
#   healthy: an agent with repo1 alone.
#   dead:    an agent with the same repo1 plus repo2, an S3 repository on a closed port of 127.0.0.1 (connection
#            refused: pgBackRest retries until io-timeout, IO_TIMEOUT s, several times).
# For each: RUNS x `backrestctl status` (wall time of the NativeAOT CLI, start-up included; it exits 1 when a
# repository is dead, which is expected here) and RUNS x GET /metrics (curl's time_total), p50 and p99; and one
# `pgbackrest info` with the agent's rendered conf, as postgres, timed. Ratio = agent p50 / plain info.
# Target: p99 of both < 100 ms in both cases (the agent answers from its status cache and never starts pgBackRest).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUNS=${RUNS:-200}
IO_TIMEOUT=${IO_TIMEOUT:-5}
TARGET_MS=100

bench_pgbench_cluster 1

agent_start healthy "$DATA" "$PGPORT" Agent__PgBackRest__IoTimeoutSeconds="$IO_TIMEOUT"
pg_set_archive_command "$PGPORT" "$(agent_archive_command "$AGENT_SOCK")"
ctl "$AGENT_PORT" stanza-create >/dev/null
ctl "$AGENT_PORT" backup --type full --wait >"$BENCH_DIR/backup.log" 2>&1 || { cat "$BENCH_DIR/backup.log" >&2; die "backup failed"; }
# The backup's own info read refreshed the cache; one more status makes sure the list is in it.
ctl "$AGENT_PORT" status >/dev/null

# measure CASE: RUNS status calls and RUNS scrapes of the current agent, then one plain info with its conf.
declare -A RESULT=()
measure() {
    local case=$1 i status_ms=() scrape_ms=() t0
    for ((i = 0; i < RUNS; i++)); do
        status_ms+=("$(wall_ms ctl "$AGENT_PORT" status)")
        scrape_ms+=("$(scrape_ms "$AGENT_METRICS_PORT")")
    done
    RESULT[$case.status.p50]=$(percentile 50 "${status_ms[@]}")
    RESULT[$case.status.p99]=$(percentile 99 "${status_ms[@]}")
    RESULT[$case.scrape.p50]=$(percentile 50 "${scrape_ms[@]}")
    RESULT[$case.scrape.p99]=$(percentile 99 "${scrape_ms[@]}")
    t0=$(now_ns)
    as_pg pgbackrest --config="$AGENT_CONF" --stanza=demo info --output=json >"$BENCH_DIR/info-$case.json" 2>"$BENCH_DIR/info-$case.err" || true
    RESULT[$case.info]=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')
    log "$case: status p50 ${RESULT[$case.status.p50]} ms, scrape p50 ${RESULT[$case.scrape.p50]} ms, plain info ${RESULT[$case.info]} ms"
}

log "healthy: $RUNS status calls and $RUNS scrapes"
measure healthy
healthy_repo=$AGENT_REPO
backups=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))[0]["backup"]))' "$BENCH_DIR/info-healthy.json")

dead_port=$(free_port)   # nothing listens there
agent_stop healthy
mapfile -t dead_repo < <(dead_s3_repo 1 "$dead_port")
agent_start dead "$DATA" "$PGPORT" Agent__PgBackRest__IoTimeoutSeconds="$IO_TIMEOUT" Agent__Repositories__0__Path="$healthy_repo" \
    "${dead_repo[@]}" Agent__Status__IntervalSeconds=5
pg_set_archive_command "$PGPORT" "$(agent_archive_command "$AGENT_SOCK")"
# Wait until the cache knows repo2 is dead (its probe), so the runs below measure that state.
# (status exits 1 then: read its output, not its exit code.)
repo2_named() { grep -q "repo2 (s3) is unreachable" <<<"$(ctl "$AGENT_PORT" status 2>&1 || true)"; }
for ((i = 0; i < 300; i++)); do
    repo2_named && break
    sleep 0.2
done
repo2_named || die "the agent never named the dead repo2"

log "dead repo2: $RUNS status calls and $RUNS scrapes"
measure dead

echo
echo "== Status and /metrics with every repository healthy and with repo2 dead (S3 on a closed port, io-timeout ${IO_TIMEOUT} s)"
echo "   $RUNS runs each; repo1 posix with $backups backup(s); times in ms"
printf '%-34s %12s %12s\n' "" "healthy" "repo2 dead"
for what in status scrape; do
    label=$([[ $what == status ]] && echo "backrestctl status" || echo "GET /metrics")
    printf '%-34s %12s %12s\n' "$label p50" "${RESULT[healthy.$what.p50]}" "${RESULT[dead.$what.p50]}"
    printf '%-34s %12s %12s\n' "$label p99" "${RESULT[healthy.$what.p99]}" "${RESULT[dead.$what.p99]}"
done
printf '%-34s %12s %12s\n' "plain pgbackrest info (one run)" "${RESULT[healthy.info]}" "${RESULT[dead.info]}"
for what in status scrape; do
    label=$([[ $what == status ]] && echo "status p50 / plain info" || echo "scrape p50 / plain info")
    printf '%-34s %12s %12s\n' "$label" "$(calc "${RESULT[healthy.$what.p50]} / ${RESULT[healthy.info]}")" \
        "$(calc "${RESULT[dead.$what.p50]} / ${RESULT[dead.info]}")"
done
for case in healthy dead; do
    for what in status scrape; do
        printf '%-34s %12s   target < %s ms: %s\n' "$case $what p99" "${RESULT[$case.$what.p99]}" "$TARGET_MS" \
            "$(meets "${RESULT[$case.$what.p99]}" '<=' "$TARGET_MS")"
    done
done
printf '%-34s %s\n' "load average at the end" "$(bench_loadavg)"
