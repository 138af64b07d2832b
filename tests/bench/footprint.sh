#!/usr/bin/env bash
# The agent's footprint: start to ready, idle memory and CPU, memory after a burst of gRPC calls, and /metrics scrape
# latency with a large backup catalog and with a dead repository, beside one plain `pgbackrest info` of the same.
#
#   tests/bench/footprint.sh                       # STARTS=5 IDLE=30 CALLS=1000 BACKUPS=1000 SCRAPES=500
#   BACKUPS=50 IDLE=10 KEEP=1 tests/bench/footprint.sh
#   AGENT_EXE= tests/bench/footprint.sh            # the plain build (dotnet backrest-agent.dll) instead
#   CATALOG=/tmp/brb-XXXX tests/bench/footprint.sh   # reuse the cluster and catalog a KEEP=1 run left there
#
# A small cluster (pgbench scale 1), one agent (the NativeAOT publish in artifacts/agent, as the tests run it and the
# image ships it), repo1 posix.
#   start -> ready: launch until /readyz answers 200 (polled every 10 ms), STARTS times; median and max.
#             Target: <= 1 s.
#   idle:     after the stanza and one full backup, RSS (VmRSS) and CPU seconds over IDLE s with nothing to do but the
#             status refresh loop. Target: RSS <= 60 MiB.
#   burst:    CALLS gRPC calls (backrestctl status, backups, history, recovery-window in turn, 4 at a time); RSS right
#             after and 10 s later (VmHWM: the peak).
#   catalog:  BACKUPS real incremental backups taken in a loop with plain pgBackRest (the agent's rendered conf) of the
#             stopped cluster, then the cluster and the agent restarted on that repository; once the agent has read
#             the catalog and listed the archive (its start-up work), SCRAPES x GET /metrics, p50/p99 (curl's
#             time_total), each followed by a GET /healthz (an empty answer: the floor this machine sets).
#             Target p99 <= 5 ms. Beside one plain `pgbackrest info`.
#   dead:     the same agent with repo2 an S3 repository on a closed port: SCRAPES x GET /metrics again, beside one plain
#             `pgbackrest info` that has to wait for repo2 (io-timeout IO_TIMEOUT s).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STARTS=${STARTS:-5}
IDLE=${IDLE:-30}
CALLS=${CALLS:-1000}
BACKUPS=${BACKUPS:-1000}
SCRAPES=${SCRAPES:-500}
IO_TIMEOUT=${IO_TIMEOUT:-5}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
hwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# scrapes CASE: SCRAPES x GET /metrics (each followed by a GET /healthz) of the current agent into
# RESULT[CASE.p50|p99|hz50|hz99], then one plain info timed.
declare -A RESULT=()
scrapes() {
    local case=$1 i ms=() hz=() t0
    # The agent's start-up work: the catalog read (info) and the first listing of the archive for gaps.
    for ((i = 0; i < 600; i++)); do
        curl -sf "http://127.0.0.1:$AGENT_METRICS_PORT/metrics" | grep -q '^pgbackrest_archive_continuity_checked_timestamp_seconds{[^}]*repo="1"}' && break
        sleep 0.1
    done
    for ((i = 0; i < 20; i++)); do scrape_ms "$AGENT_METRICS_PORT" >/dev/null; done   # warm-up
    for ((i = 0; i < SCRAPES; i++)); do
        ms+=("$(scrape_ms "$AGENT_METRICS_PORT")")
        hz+=("$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$AGENT_METRICS_PORT/healthz" | awk '{ printf "%.3f", $1 * 1000 }')")
    done
    RESULT[$case.p50]=$(percentile 50 "${ms[@]}")
    RESULT[$case.p99]=$(percentile 99 "${ms[@]}")
    RESULT[$case.hz50]=$(percentile 50 "${hz[@]}")
    RESULT[$case.hz99]=$(percentile 99 "${hz[@]}")
    RESULT[$case.bytes]=$(curl -sf "http://127.0.0.1:$AGENT_METRICS_PORT/metrics" | wc -c)
    t0=$(now_ns)
    as_pg pgbackrest --config="$AGENT_CONF" --stanza=demo info --output=json >"$BENCH_DIR/info-$case.json" 2>"$BENCH_DIR/info-$case.err" || true
    RESULT[$case.info]=$(awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
    log "$case: scrape p50 ${RESULT[$case.p50]} ms, p99 ${RESULT[$case.p99]} ms (healthz ${RESULT[$case.hz50]}, ${RESULT[$case.hz99]}); plain info ${RESULT[$case.info]} ms"
}

bench_pgbench_cluster 1

# --- start -> ready (the first start also creates the stanza's files; every start reads the same empty repository)
ready=()
for ((s = 1; s <= STARTS; s++)); do
    agent_start agent "$DATA" "$PGPORT" Agent__PgBackRest__IoTimeoutSeconds="$IO_TIMEOUT"
    ready+=("$AGENT_READY_S")
    ((s == STARTS)) || agent_stop agent
done
repo=$AGENT_REPO
pg_set_archive_command "$PGPORT" "$(agent_archive_command "$AGENT_SOCK")"
ctl "$AGENT_PORT" stanza-create >/dev/null
ctl "$AGENT_PORT" backup --type full --wait >"$BENCH_DIR/backup.log" 2>&1 || { cat "$BENCH_DIR/backup.log" >&2; die "backup failed"; }

# --- idle
log "idle for 5 + $IDLE s"
sleep 5
pid=$AGENT_PID
cpu0=$(proc_cpu_s "$pid")
sleep "$IDLE"
idle_cpu=$(calc "$(proc_cpu_s "$pid") - $cpu0")
idle_rss=$(rss_mib "$pid")
idle_threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")

# --- burst of gRPC calls
log "burst: $CALLS gRPC calls, 4 at a time"
commands=(status backups history recovery-window)
t0=$(now_ns)
for ((i = 0; i < CALLS; i++)); do echo "${commands[i % 4]}"; done |
    xargs -P 4 -I{} "$BACKRESTCTL" --agent "127.0.0.1:$AGENT_PORT" {} >/dev/null 2>&1 || true
burst_s=$(elapsed_s "$t0")
burst_rss=$(rss_mib "$pid")
sleep 10
burst_rss_later=$(rss_mib "$pid")
burst_hwm=$(hwm_mib "$pid")

# --- catalog of BACKUPS backups
agent_stop agent
if [[ -n ${CATALOG:-} ]]; then
    # A kept run's cluster and repository: the same catalog without building it again (most of this script's time).
    pg_stop "$DATA"
    DATA=$CATALOG/data
    repo=$CATALOG/agent/repo1
    [[ -d $DATA && -d $repo ]] || die "CATALOG=$CATALOG holds no data/ and agent/repo1/ of a KEEP=1 run"
    printf "\n# footprint.sh CATALOG reuse\nunix_socket_directories = '%s'\nport = %s\n" "$BENCH_DIR" "$PGPORT" >>"$DATA/postgresql.conf"
    BACKUPS=$(($(find "$repo/backup/demo" -maxdepth 1 -type d -name '2*' | wc -l) - 1))
    catalog_s="(reused from $CATALOG)"
else
    # Offline backups of the stopped cluster (--no-online: no checkpoint, no WAL to wait for) are real pgBackRest backups
    # at about a third of an online one's time here; each follows a one-line change of postgresql.conf, since pgBackRest
    # refuses an incremental backup in which no file changed.
    pg_stop "$DATA"
    log "catalog: $BACKUPS offline incremental backups with plain pgBackRest (progress every 50)"
    t0=$(now_ns)
    for ((b = 1; b <= BACKUPS; b++)); do
        echo "# footprint.sh catalog backup $b" >>"$DATA/postgresql.conf"
        pgbr "$AGENT_CONF" backup --type=incr --repo=1 --no-online >"$BENCH_DIR/catalog-backup.log" 2>&1 \
            || { cat "$BENCH_DIR/catalog-backup.log" >&2; die "backup $b of the catalog failed"; }
        ((b % 50)) || log "  $b/$BACKUPS backups ($(elapsed_s "$t0") s)"
    done
    catalog_s="in $(elapsed_s "$t0") s"
fi
pg_start "$DATA"
agent_start agent "$DATA" "$PGPORT" Agent__PgBackRest__IoTimeoutSeconds="$IO_TIMEOUT" Agent__Repositories__0__Path="$repo"
pg_set_archive_command "$PGPORT" "$(agent_archive_command "$AGENT_SOCK")"
catalog_ready=$AGENT_READY_S
# The scrapes below must see the whole catalog: wait until the status cache has read it.
listed_backups() { curl -sf "http://127.0.0.1:$AGENT_METRICS_PORT/metrics" | awk '/^pgbackrest_backups[{]/ { s += $NF } END { print s + 0 }'; }
for ((i = 0; i < 600; i++)); do
    (($(listed_backups) > BACKUPS)) && break
    sleep 0.1
done
listed=$(listed_backups)
scrapes catalog
catalog_rss=$(rss_mib "$AGENT_PID")

# --- the same with a dead repo2
dead_port=$(free_port)   # nothing listens there
agent_stop agent
mapfile -t dead_repo < <(dead_s3_repo 1 "$dead_port")
agent_start dead "$DATA" "$PGPORT" Agent__PgBackRest__IoTimeoutSeconds="$IO_TIMEOUT" Agent__Repositories__0__Path="$repo" \
    "${dead_repo[@]}"
pg_set_archive_command "$PGPORT" "$(agent_archive_command "$AGENT_SOCK")"
for ((i = 0; i < 300; i++)); do
    curl -sf "http://127.0.0.1:$AGENT_METRICS_PORT/metrics" | grep -q 'pgbackrest_repo_up{[^}]*repo="2"} 0' && break
    sleep 0.2
done
scrapes dead

echo
echo "== Agent footprint ($([[ -n $AGENT_EXE ]] && echo "$(basename "$AGENT_EXE"), NativeAOT" || echo "dotnet $(basename "$AGENT_DLL")"); $(nproc) CPUs)"
printf '%-46s %s\n' "start -> ready (s), $STARTS starts" "${ready[*]}"
printf '%-46s %10s   max %s   target <= 1 s: %s\n' "start -> ready median (s)" "$(median "${ready[@]}")" \
    "$(percentile 100 "${ready[@]}")" "$(meets "$(median "${ready[@]}")" '<=' 1)"
printf '%-46s %10s   target <= 60: %s\n' "idle RSS (MiB)" "$idle_rss" "$(meets "$idle_rss" '<=' 60)"
printf '%-46s %10s   (%s %% of one CPU; %s threads)\n' "idle CPU over $IDLE s (s)" "$idle_cpu" "$(calc "100 * $idle_cpu / $IDLE")" "$idle_threads"
printf '%-46s %10s   (%s calls in %s s)\n' "RSS right after $CALLS gRPC calls (MiB)" "$burst_rss" "$CALLS" "$burst_s"
printf '%-46s %10s   (peak %s MiB)\n' "RSS 10 s after the burst (MiB)" "$burst_rss_later" "$burst_hwm"
printf '%-46s %10s   (%s backups %s; the agent lists %s)\n' "start -> ready with the catalog (s)" "$catalog_ready" \
    "$BACKUPS" "$catalog_s" "$listed"
printf '%-46s %10s   (%s bytes a scrape)\n' "RSS with the catalog, after the scrapes (MiB)" "$catalog_rss" "${RESULT[catalog.bytes]}"
for case in catalog dead; do
    what=$([[ $case == catalog ]] && echo "$((BACKUPS + 1)) backups" || echo "$((BACKUPS + 1)) backups, repo2 dead")
    printf '%-46s %10s   p99 %s   target p99 <= 5 ms: %s\n' "GET /metrics p50 (ms), $what" "${RESULT[$case.p50]}" \
        "${RESULT[$case.p99]}" "$(meets "${RESULT[$case.p99]}" '<=' 5)"
    printf '%-46s %10s   p99 %s   (the same loop: what any answer costs here)\n' "  GET /healthz p50 (ms)" "${RESULT[$case.hz50]}" "${RESULT[$case.hz99]}"
    printf '%-46s %10s   (scrape p99 / info: %s)\n' "  plain pgbackrest info, one run (ms)" "${RESULT[$case.info]}" \
        "$(calc "${RESULT[$case.p99]} / ${RESULT[$case.info]}")"
done
printf '%-46s %s\n' "load average at the end" "$(bench_loadavg)"
