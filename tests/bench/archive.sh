#!/usr/bin/env bash
# WAL archiving through the agent vs archive_command = pgbackrest directly.
#
#   tests/bench/archive.sh                 # DURATION=60 ROUNDS=1 LOAD=random
#   DURATION=20 STARTUP_RUNS=30 tests/bench/archive.sh
#   ROUNDS=3 tests/bench/archive.sh        # each setup 3 times, order rotated, medians (this machine is noisy)
#
# (a) Archive client start-up: median wall time of
#       pgbackrest-archive --socket S push <a segment already archived>     target <= 10 ms
#     plus, for context, `get` of a segment the archive does not have, the client alone (--version) and
#     pgbackrest's own archive-push/archive-get of the same segments. hyperfine if installed (run as postgres,
#     no shell), else (or with STARTUP_TOOL=loop) a date +%s%N loop.
# (b) WAL archive throughput under the fastest single-client write load we have (LOAD, default random)
#       pgbench -n -c 1 -T DURATION -f: insert into t select gen_random_bytes(1000) from generate_series(1,10000)
#     (incompressible, ~7.5 segments/s here; LOAD=md5: md5(random()::text) rows, ~2.5 segments/s; see lib.sh)
#     for three archive_command setups, all with the agent's compression/process-max (same rendered conf):
#       agent          pgbackrest-archive --socket S push %p
#       direct-async   pgbackrest --config=<agent conf, own spool> --stanza=demo archive-push %p
#       direct-sync    pgbackrest --config=<agent conf> --stanza=demo --archive-async=n archive-push %p
#     Segments generated = WAL LSN advance / 16 MiB; archived = pg_stat_archiver.archived_count delta, both
#     over the load's wall time; backlog = pg_wal/archive_status/*.ready right when the load stops (then
#     drained with the same command, DRAIN_TIMEOUT s, default 900). Also shown: CPU seconds of the archiver
#     and of the agent during the load, and (informational) each setup's capacity: the time to archive a
#     backlog of BACKLOG_SEGS (default 160) segments piled up with archiving off, with no load running.
#     Targets: agent/direct-async archived-per-second >= 0.95; agent >= 1.5 x direct-sync.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-60}
STARTUP_RUNS=${STARTUP_RUNS:-100}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-900}
BACKLOG_SEGS=${BACKLOG_SEGS:-160}
ROUNDS=${ROUNDS:-1}

bench_init
PGPORT=$(free_port)
DATA=$BENCH_DIR/data
pg_init "$DATA" "$PGPORT"
pg_start "$DATA"
agent_start agent "$DATA" "$PGPORT"
AGENT_CMD="$(agent_archive_command "$AGENT_SOCK")"
pg_set_archive_command "$PGPORT" "$AGENT_CMD"
ctl "$AGENT_PORT" stanza-create >/dev/null

# ------------------------------------------------------------------------------------ (a) start-up
LOAD=${LOAD:-random}
create_t=$(write_load_sql "$LOAD" "$BENCH_DIR/load.sql")
psql_q "$PGPORT" "create extension if not exists pgcrypto" "$create_t" "insert into t select * from t" >/dev/null
psql_q "$PGPORT" "select pg_switch_wal()" >/dev/null
[[ $(pg_wait_archived "$DATA" 60) != timeout ]] || die "the first segment was not archived"
seg_name=$(psql_q "$PGPORT" "select last_archived_wal from pg_stat_archiver")
seg_path=$DATA/pg_wal/$seg_name
[[ -f $seg_path ]] || die "$seg_path is gone"
# restore_command writes only into a data directory's pg_wal: a stand-in for a clone restored beside the primary.
getdir=$(bench_mkdir getdst)/pg_wal
mkdir -p "$getdir" && cp "$DATA/PG_VERSION" "$getdir/.." && chown -R "$PG_USER:$PG_USER" "$getdir/.."
missing=00000001000000FF000000FF

startup_cmds=(
    "$ARCHIVE_CLIENT --socket $AGENT_SOCK push $seg_path"
    "$ARCHIVE_CLIENT --socket $AGENT_SOCK get $missing $getdir/RECOVERYXLOG"
    "$ARCHIVE_CLIENT --version"
    "pgbackrest --config=$AGENT_CONF --stanza=demo archive-push $seg_path"
    "pgbackrest --config=$AGENT_CONF --stanza=demo archive-get $missing $getdir/RECOVERYXLOG"
)
startup_labels=(
    "agent push (already archived)"
    "agent get (missing segment)"
    "client alone (--version)"
    "pgbackrest archive-push (same, direct)"
    "pgbackrest archive-get (same, direct)"
)
startup_ms=()
startup_tool=""
if command -v hyperfine >/dev/null && [[ ${STARTUP_TOOL:-} != loop ]]; then
    startup_tool="hyperfine, $STARTUP_RUNS runs, median"
    as_pg hyperfine -N -i --style none --warmup 5 --runs "$STARTUP_RUNS" \
        --export-json "$BENCH_DIR/startup.json" "${startup_cmds[@]}" >"$BENCH_DIR/startup.txt" 2>&1 \
        || { cat "$BENCH_DIR/startup.txt" >&2; die "hyperfine failed"; }
    mapfile -t startup_ms < <(python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("%.2f" % (r["median"] * 1000))' "$BENCH_DIR/startup.json")
else
    startup_tool="date +%s%N loop as postgres, $STARTUP_RUNS runs, median (includes bash fork)"
    for c in "${startup_cmds[@]}"; do
        ms=$(as_pg bash -c '
            n=$1; shift; times=()
            for ((i = 0; i < n + 5; i++)); do
                t0=$(date +%s%N); "$@" >/dev/null 2>&1 || true; t1=$(date +%s%N)
                ((i >= 5)) && times+=($(( (t1 - t0) / 1000 )))
            done
            printf "%s\n" "${times[@]}" | sort -n | awk "{ v[NR] = \$1 } END { printf \"%.2f\", v[int((NR + 1) / 2)] / 1000 }"
        ' _ "$STARTUP_RUNS" $c)   # $c split into words on purpose
        startup_ms+=("$ms")
    done
fi
# The push must really succeed (exit 0) and the get must say "not found" (exit 1).
as_pg "$ARCHIVE_CLIENT" --socket "$AGENT_SOCK" push "$seg_path" || die "push of an archived segment failed"
get_rc=0; as_pg "$ARCHIVE_CLIENT" --socket "$AGENT_SOCK" get "$missing" "$getdir/RECOVERYXLOG" || get_rc=$?
[[ $get_rc == 1 ]] || die "get of a missing segment exited $get_rc, expected 1"

# ------------------------------------------------------------------------------------ (b) throughput
# direct-async gets its own spool/lock/log so it never touches the agent's async state; same repo.
DIRECT_HOME=$(bench_mkdir direct)
mkdir -p "$DIRECT_HOME"/{spool,lock,log}
sed -e "s#^spool-path=.*#spool-path=$DIRECT_HOME/spool#" -e "s#^lock-path=.*#lock-path=$DIRECT_HOME/lock#" \
    -e "s#^log-path=.*#log-path=$DIRECT_HOME/log#" "$AGENT_CONF" >"$DIRECT_HOME/pgbackrest.conf"
chown -R "$PG_USER:$PG_USER" "$DIRECT_HOME"
chmod 600 "$DIRECT_HOME/pgbackrest.conf"


read -r -a setups <<<"${SETUPS:-agent direct-async direct-sync}"     # SETUPS=none: start-up figures only
[[ ${setups[*]} == none ]] && setups=()
declare -A CMD=(
    [agent]="$AGENT_CMD"
    [direct-async]="pgbackrest --config=$DIRECT_HOME/pgbackrest.conf --stanza=demo archive-push %p"
    [direct-sync]="pgbackrest --config=$AGENT_CONF --stanza=demo --archive-async=n archive-push %p"
)
# Per setup and round: space-separated lists, medians in the report.
declare -A GEN GEN_S ARCH ARCH_S RATIO BACKLOG DRAIN TPS CAP_S CPU_ARCHIVER CPU_AGENT CPU_SYS
WAL_AGENT_PID=${BENCH_AGENT_PID_BY_NAME[agent]}
for ((round = 1; round <= ROUNDS; round++)); do
    # Rotate the order each round, so no setup always runs first (or right after another one).
    order=("${setups[@]:$(((round - 1) % ${#setups[@]}))}" "${setups[@]:0:$(((round - 1) % ${#setups[@]}))}")
    for s in "${order[@]}"; do
        log "round $round/$ROUNDS, $s: ${DURATION}s load"
        wal_load_measure "$PGPORT" "$DATA" "${CMD[$s]}" "$DURATION" "$BENCH_DIR/load.sql" "$s-$round"
        GEN[$s]+="$W_GEN " GEN_S[$s]+="$W_GEN_S " ARCH[$s]+="$W_ARCH " ARCH_S[$s]+="$W_ARCH_S "
        RATIO[$s]+="$(calc "$W_ARCH / $W_GEN") " BACKLOG[$s]+="$W_BACKLOG " TPS[$s]+="$W_TPS "
        CPU_ARCHIVER[$s]+="$W_ARCHIVER_CPU " CPU_AGENT[$s]+="$W_AGENT_CPU " CPU_SYS[$s]+="$W_SYS_CPU "
        took=$(pg_wait_archived "$DATA" "$DRAIN_TIMEOUT")
        DRAIN[$s]+="$took "
        failed=$(psql_q "$PGPORT" "select failed_count from pg_stat_archiver")
        log "$s: backlog drained in ${took}s (archiver failed_count so far: $failed)"
        psql_q "$PGPORT" "truncate t" >/dev/null
        repo_prune_wal "$AGENT_REPO"    # disk: a minute of this load is ~8 GB of WAL

        # Capacity: pile up BACKLOG_SEGS segments with archiving off (archive_command ''), then time how
        # long this setup takes to archive them with nothing else running.
        pg_set_archive_command "$PGPORT" ""
        psql_q "$PGPORT" "truncate t" "checkpoint" >/dev/null
        while (($(pg_ready_count "$DATA") < BACKLOG_SEGS)); do
            as_pg "$PGBIN/pgbench" -h "$BENCH_DIR" -p "$PGPORT" -n -c 1 -t 20 -f "$BENCH_DIR/load.sql" postgres >/dev/null 2>&1
        done
        psql_q "$PGPORT" "checkpoint" >/dev/null
        pile=$(pg_ready_count "$DATA")
        pg_set_archive_command "$PGPORT" "${CMD[$s]}"
        took=$(pg_wait_archived "$DATA" "$DRAIN_TIMEOUT")
        if [[ $took == timeout ]]; then
            rate=$(calc "($pile - $(pg_ready_count "$DATA")) / $DRAIN_TIMEOUT")
        else
            rate=$(calc "$pile / $took")
        fi
        CAP_S[$s]+="$rate "
        log "$s: archived a backlog of $pile segments in ${took}s ($rate seg/s)"
        repo_prune_wal "$AGENT_REPO"
    done
done

# ------------------------------------------------------------------------------------ report
med() { median $1; }   # median of a space-separated list
echo
echo "== (a) Archive client start-up ($startup_tool)"
for i in "${!startup_labels[@]}"; do
    printf '  %-38s %8s ms\n' "${startup_labels[$i]}" "${startup_ms[$i]}"
done
printf '  %-38s %8s ms   target <= 10 ms: %s\n' "=> agent push" "${startup_ms[0]}" "$(meets "${startup_ms[0]}" '<=' 10)"

((${#setups[@]} > 0)) || exit 0
echo
echo "== (b) WAL archive throughput, ${DURATION}s single-client insert load ($(sed 's/ from generate_series.*//' "$BENCH_DIR/load.sql") x10000 rows),"
echo "   $(grep -E '^(compress-type|compress-level|process-max)=' "$AGENT_CONF" | paste -sd' ') for all; $ROUNDS round(s), order rotated, medians"
printf '  %-13s %8s %8s %8s %8s %8s %8s %8s %8s %9s %9s %9s\n' setup "load tps" "gen" "gen/s" archived "arch/s" "arch/gen" backlog "drain s" "archv cpu" "agent cpu" "all cpu"
for s in "${setups[@]}"; do
    printf '  %-13s %8s %8s %8s %8s %8s %8s %8s %8s %9s %9s %9s\n' "$s" "$(med "${TPS[$s]}")" "$(med "${GEN[$s]}")" \
        "$(med "${GEN_S[$s]}")" "$(med "${ARCH[$s]}")" "$(med "${ARCH_S[$s]}")" "$(med "${RATIO[$s]}")" "$(med "${BACKLOG[$s]}")" \
        "$(med "${DRAIN[$s]}")" "$(med "${CPU_ARCHIVER[$s]}")" "$(med "${CPU_AGENT[$s]}")" "$(med "${CPU_SYS[$s]}")"
done
echo "  (gen/archived in segments; cpu in CPU-seconds during the load: archv = PostgreSQL's archiver + the archive_command"
echo "   processes; agent = the agent + the pgbackrest processes it waited for; all = the whole machine, $(nproc) CPUs x ${DURATION}s max;"
echo "   detached async archive-push workers show only in 'all')"
if ((ROUNDS > 1)); then
    for s in "${setups[@]}"; do printf '  %-13s arch/s per round: %s\n' "$s" "${ARCH_S[$s]}"; done
fi
echo "  capacity (informational): archiving a backlog of ~$BACKLOG_SEGS segments made with archiving off, nothing else running"
for s in "${setups[@]}"; do
    printf '  %-13s %8s seg/s   (per round: %s)\n' "$s" "$(med "${CAP_S[$s]}")" "${CAP_S[$s]}"
done
echo "  load average at the end: $(bench_loadavg)"
if [[ -n ${ARCH_S[agent]:-} && -n ${ARCH_S[direct-async]:-} && -n ${ARCH_S[direct-sync]:-} ]]; then
    a=$(med "${ARCH_S[agent]}") da=$(med "${ARCH_S[direct-async]}") ds=$(med "${ARCH_S[direct-sync]}")
    r_async=$(calc "$a / $da")
    r_sync=$(calc "$a / $ds")
    printf '  %-44s %8s   target >= 0.95: %s\n' "archived/s agent / direct-async" "$r_async" "$(meets "$r_async" '>=' 0.95)"
    printf '  %-44s %8s   target >= 1.5:  %s\n' "archived/s agent / direct-sync" "$r_sync" "$(meets "$r_sync" '>=' 1.5)"
    printf '  %-44s %8s   (informational)\n' "capacity agent / direct-async" "$(calc "$(med "${CAP_S[agent]}") / $(med "${CAP_S[direct-async]}")")"
    printf '  %-44s %8s   (informational)\n' "capacity agent / direct-sync" "$(calc "$(med "${CAP_S[agent]}") / $(med "${CAP_S[direct-sync]}")")"
fi
