#!/usr/bin/env bash
# "Fast, safe defaults": the agent with its defaults vs pgBackRest with its own defaults, in one run on the
# same cluster and data.
#
#   tests/bench/defaults.sh                      # DURATION=60 RUNS=3 SCALE=50
#   DURATION=15 RUNS=1 SCALE=5 tests/bench/defaults.sh
#
# Agent defaults: zst level 1, process-max = CPUs, async archiving (its rendered conf).
# pgBackRest defaults: a hand-written conf that sets only paths (gz level 6, process-max 1, sync archiving),
# with its own repository.
#
# (a) WAL: DURATION s of the fastest single-client write load with poorly compressible rows
#       pgbench -n -c 1 -T DURATION -f: insert into t select md5(random()::text)||md5(random()::text)
#                                        from generate_series(1,10000)
#     (LOAD=md5x2, the default; LOAD=random: incompressible gen_random_bytes(1000) rows, see lib.sh)
#     once with archive_command through the agent, once with `pgbackrest archive-push %p` (pgBackRest defaults).
#     Segments generated (LSN advance / 16 MiB) and archived (pg_stat_archiver) per second, and the .ready
#     backlog when the load stops. Target (agent): backlog <= 2 segments and archived/generated >= 0.95.
# (b) Backups: full backup of pgbench scale SCALE through the agent vs `pgbackrest backup` with pgBackRest's
#     defaults, RUNS each (alternating), source quiet. Targets: median wall-time ratio agent/defaults <= 0.35,
#     repository size ratio (info's repository size of the last full of each) <= 1.0. The last backup of each
#     is restored into a new directory, started on a free port, and must match the source's
#     count(*), sum(abalance) and sum of row hashes of pgbench_accounts (after 5 s of pgbench updates).
# (c) Block incremental, explicitly on (Agent__PgBackRest__BlockIncremental=true; the agent adds beta=y on
#     2.45) vs explicitly off, each with its own agent and repository: full backup, update a contiguous 1% of
#     pgbench_accounts (aid <= SCALE*1000) + checkpoint, incr backup. Target (block on): incr repository
#     delta <= 5% of the full's repository size.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION=${DURATION:-60}
RUNS=${RUNS:-3}
SCALE=${SCALE:-50}

bench_pgbench_cluster "$SCALE"
LOAD=${LOAD:-md5x2}
create_t=$(write_load_sql "$LOAD" "$BENCH_DIR/load.sql")
psql_q "$PGPORT" "create extension if not exists pgcrypto" "$create_t" "checkpoint" >/dev/null

agent_start agent "$DATA" "$PGPORT"
AGENT_CMD="$(agent_archive_command "$AGENT_SOCK")"
pg_set_archive_command "$PGPORT" "$AGENT_CMD"
ctl "$AGENT_PORT" stanza-create >/dev/null
agent_settings=$(grep -E '^(compress-type|compress-level|process-max|archive-async)=' "$AGENT_CONF" | paste -sd' ')

DEF_REPO=$BENCH_DIR/defrepo
DEF_CONF=$(write_pgbackrest_defaults_conf pgbr-defaults "$DATA" "$PGPORT" "$DEF_REPO")
DEF_CMD="pgbackrest --config=$DEF_CONF --stanza=demo archive-push %p"
pgbr "$DEF_CONF" stanza-create >"$BENCH_DIR/def-stanza-create.log" 2>&1
def_settings="$(pgbr "$DEF_CONF" help backup compress-type | grep -oE 'default: [a-z0-9]+' | head -1 | sed 's/default: /compress-type=/') \
compress-level=$(pgbr "$DEF_CONF" help backup compress-level | grep -oE '^\* gz - [0-9]+' | grep -oE '[0-9]+$') \
$(pgbr "$DEF_CONF" help backup process-max | grep -oE 'default: [0-9]+' | head -1 | sed 's/default: /process-max=/') \
$(pgbr "$DEF_CONF" help archive-push archive-async | grep -oE 'default: [a-z]+' | head -1 | sed 's/default: /archive-async=/')"

# ---------------------------------------------------------------------------------------------- (a) WAL
declare -A GEN GEN_S ARCH ARCH_S BACKLOG TPS DRAIN CPU_SYS
for s in agent pgbackrest; do
    cmd=$AGENT_CMD
    [[ $s == pgbackrest ]] && cmd=$DEF_CMD
    log "(a) WAL load, archive_command: $s defaults, ${DURATION}s"
    wal_load_measure "$PGPORT" "$DATA" "$cmd" "$DURATION" "$BENCH_DIR/load.sql" "$s"
    GEN[$s]=$W_GEN GEN_S[$s]=$W_GEN_S ARCH[$s]=$W_ARCH ARCH_S[$s]=$W_ARCH_S BACKLOG[$s]=$W_BACKLOG TPS[$s]=$W_TPS CPU_SYS[$s]=$W_SYS_CPU
    DRAIN[$s]=$(pg_wait_archived "$DATA" 1800)
    log "$s: backlog of ${BACKLOG[$s]} drained in ${DRAIN[$s]}s"
done
psql_q "$PGPORT" "drop table t" "checkpoint" >/dev/null
repo_prune_wal "$AGENT_REPO"
repo_prune_wal "$DEF_REPO"

# ---------------------------------------------------------------------------------------------- (b) backups
# Some updates first (through the agent's archiving), so that sum(abalance) and the row hash check real values.
pg_set_archive_command "$PGPORT" "$AGENT_CMD"
as_pg "$PGBIN/pgbench" -h "$BENCH_DIR" -p "$PGPORT" -n -c 2 -T 5 postgres >"$BENCH_DIR/pgbench-tpcb.log" 2>&1
source_sum() { accounts_checksum "$PGPORT"; }
EXPECTED="$(source_sum)"
db_size=$(psql_q "$PGPORT" "select pg_size_pretty(pg_database_size('postgres'))")
agent_times=()
def_times=()
backup_agent() {
    local t0
    pg_set_archive_command "$PGPORT" "$AGENT_CMD"
    psql_q "$PGPORT" checkpoint >/dev/null
    t0=$(now_ns)
    ctl "$AGENT_PORT" backup --type full --wait >"$BENCH_DIR/b-agent-$1.log" 2>&1 \
        || { cat "$BENCH_DIR/b-agent-$1.log" >&2; die "backup through the agent failed"; }
    agent_times+=("$(elapsed_s "$t0")")
}
backup_def() {
    local t0
    # Each side archives into its own repository: the backup waits for its stop segment there.
    pg_set_archive_command "$PGPORT" "$DEF_CMD"
    psql_q "$PGPORT" checkpoint >/dev/null
    t0=$(now_ns)
    pgbr "$DEF_CONF" backup --type=full >"$BENCH_DIR/b-def-$1.log" 2>&1 \
        || { cat "$BENCH_DIR/b-def-$1.log" >&2; die "pgbackrest backup (defaults) failed"; }
    def_times+=("$(elapsed_s "$t0")")
}
for ((r = 1; r <= RUNS; r++)); do
    if ((r % 2)); then backup_agent "$r"; backup_def "$r"; else backup_def "$r"; backup_agent "$r"; fi
    log "(b) backup run $r/$RUNS: agent ${agent_times[-1]} s, pgBackRest defaults ${def_times[-1]} s"
done
[[ "$(source_sum)" == "$EXPECTED" ]] || die "the source changed during the backups"
pg_set_archive_command "$PGPORT" "$AGENT_CMD"

# Repository size of the newest full of each, from pgbackrest info (the agent's through its own conf).
agent_label=$(pgbr_latest_label "$AGENT_CONF")
def_label=$(pgbr_latest_label "$DEF_CONF")
agent_repo_size=$(pgbr_backup_field "$AGENT_CONF" "$agent_label" repo-size)
def_repo_size=$(pgbr_backup_field "$DEF_CONF" "$def_label" repo-size)
agent_du=$(repo_backup_bytes "$AGENT_REPO" "$agent_label")
def_du=$(repo_backup_bytes "$DEF_REPO" "$def_label")
# ...and what the agent reports for it (backrestctl backups --json: repositorySize).
agent_json_size=$(ctl "$AGENT_PORT" backups --json | python3 -c '
import json, sys
label = sys.argv[1]
for b in json.load(sys.stdin)["backups"]:
    if b["label"] == label: print(b.get("repositorySize", ""))' "$agent_label")

verify_copy() {
    local dir=$1 port got
    port=$(free_port)
    pg_start "$dir" "$port"
    pg_wait_promoted "$port"
    got=$(accounts_checksum "$port")
    pg_stop "$dir"
    echo "$got"
}
RESTORES=$(bench_mkdir restores)
log "(b) restoring the newest backup of each"
ctl "$AGENT_PORT" restore --data-directory "$RESTORES/agent" --wait >"$BENCH_DIR/r-agent.log" 2>&1 \
    || { cat "$BENCH_DIR/r-agent.log" >&2; die "restore through the agent failed"; }
agent_got=$(verify_copy "$RESTORES/agent")
rm -rf "$RESTORES/agent"
pgbr "$DEF_CONF" restore --pg1-path="$RESTORES/def" --archive-mode=off >"$BENCH_DIR/r-def.log" 2>&1 \
    || { cat "$BENCH_DIR/r-def.log" >&2; die "pgbackrest restore (defaults) failed"; }
def_got=$(verify_copy "$RESTORES/def")
rm -rf "$RESTORES/def"
check_rows() { [[ $1 == "$EXPECTED" ]] && echo "pass (count sum hash: $1)" || echo "FAIL (got '$1', source '$EXPECTED')"; }

agent_stop agent

# ---------------------------------------------------------------------------------------------- (c) block incr
declare -A FULL_SIZE INCR_DELTA INCR_DB_DELTA
changed_rows=$((SCALE * 1000))
for mode in on off; do
    flag=true
    [[ $mode == off ]] && flag=false
    name=blk-$mode
    log "(c) block incremental $mode"
    agent_start "$name" "$DATA" "$PGPORT" Agent__PgBackRest__BlockIncremental=$flag
    pg_set_archive_command "$PGPORT" "$(agent_archive_command "$AGENT_SOCK")"
    ctl "$AGENT_PORT" stanza-create >/dev/null
    grep -E '^(beta|repo1-block|repo1-bundle)=' "$AGENT_CONF" | paste -sd' ' | sed "s/^/[$name conf] /" >&2 || true
    ctl "$AGENT_PORT" backup --type full --wait >"$BENCH_DIR/c-$name-full.log" 2>&1 \
        || { cat "$BENCH_DIR/c-$name-full.log" >&2; die "$name: full backup failed"; }
    psql_q "$PGPORT" "update pgbench_accounts set abalance = abalance + 1 where aid <= $changed_rows" "checkpoint" >/dev/null
    ctl "$AGENT_PORT" backup --type incr --wait >"$BENCH_DIR/c-$name-incr.log" 2>&1 \
        || { cat "$BENCH_DIR/c-$name-incr.log" >&2; die "$name: incr backup failed"; }
    ctl "$AGENT_PORT" backups --json >"$BENCH_DIR/c-$name-backups.json"
    pgbr "$AGENT_CONF" info --output=json >"$BENCH_DIR/c-$name-info.json"
    # Full: repository size (absent for block incremental backups on 2.45: then its delta, the same for a full).
    read -r FULL_SIZE[$mode] INCR_DELTA[$mode] INCR_DB_DELTA[$mode] < <(python3 -c '
import json, sys
backups = json.load(open(sys.argv[1]))["backups"]
full = [b for b in backups if b["type"] == "full"][-1]
incr = [b for b in backups if b["type"] == "incr"][-1]
# The agent reports repositorySize "0" where pgBackRest omits the size (block incremental): use the delta.
print(int(full.get("repositorySize", 0)) or int(full["repositoryDelta"]), incr["repositoryDelta"], incr["databaseDelta"])
' "$BENCH_DIR/c-$name-backups.json")
    pg_wait_archived "$DATA" 300 >/dev/null
    agent_stop "$name"
    log "$name: full repo size ${FULL_SIZE[$mode]}, incr repo delta ${INCR_DELTA[$mode]}"
done
pg_set_archive_command "$PGPORT" "/bin/true"

# ---------------------------------------------------------------------------------------------- report
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
echo
echo "== (a) WAL archiving at a ${DURATION}s single-client load: $(sed 's/ from generate_series.*//' "$BENCH_DIR/load.sql") x10000 rows"
echo "   agent:      $agent_settings"
echo "   pgBackRest: $def_settings   (its defaults)"
printf '  %-12s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n' "defaults" "load tps" "gen segs" "gen/s" "archived" "arch/s" "arch/gen" "backlog" "drain s" "all cpu"
for s in agent pgbackrest; do
    printf '  %-12s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n' "$s" "${TPS[$s]}" "${GEN[$s]}" "${GEN_S[$s]}" "${ARCH[$s]}" \
        "${ARCH_S[$s]}" "$(calc "${ARCH[$s]} / ${GEN[$s]}")" "${BACKLOG[$s]}" "${DRAIN[$s]}" "${CPU_SYS[$s]}"
done
echo "  (segments; backlog = .ready files when the load stopped; drain s = time to archive that backlog afterwards;"
echo "   all cpu = busy CPU-seconds of the whole machine during the load, $(nproc) CPUs x ${DURATION}s max)"
a_ratio=$(calc "${ARCH[agent]} / ${GEN[agent]}")
printf '  %-40s %9s   target <= 2:    %s\n' "agent backlog at the end (segments)" "${BACKLOG[agent]}" "$(meets "${BACKLOG[agent]}" '<=' 2)"
printf '  %-40s %9s   target >= 0.95: %s\n' "agent archived / generated" "$a_ratio" "$(meets "$a_ratio" '>=' 0.95)"

echo
echo "== (b) Full backup, pgbench scale $SCALE ($db_size), $RUNS runs each, agent defaults vs pgBackRest defaults"
agent_med=$(median "${agent_times[@]}")
def_med=$(median "${def_times[@]}")
t_ratio=$(calc "$agent_med / $def_med")
s_ratio=$(calc "$agent_repo_size / $def_repo_size")
printf '  %-40s %s\n' "agent runs (s)" "${agent_times[*]}"
printf '  %-40s %s\n' "pgBackRest defaults runs (s)" "${def_times[*]}"
printf '  %-40s %9s s vs %9s s\n' "median wall time agent vs defaults" "$agent_med" "$def_med"
printf '  %-40s %9s   target <= 0.35: %s\n' "wall-time ratio agent / defaults" "$t_ratio" "$(meets "$t_ratio" '<=' 0.35)"
printf '  %-40s %9s MiB vs %9s MiB  (du -sb: %s vs %s MiB; agent JSON repositorySize %s)\n' "repo size of newest full (info)" \
    "$(mb "$agent_repo_size")" "$(mb "$def_repo_size")" "$(mb "$agent_du")" "$(mb "$def_du")" "${agent_json_size:-?}"
printf '  %-40s %9s   target <= 1.0:  %s\n' "repo size ratio agent / defaults" "$s_ratio" "$(meets "$s_ratio" '<=' 1.0)"
printf '  %-40s %s\n' "restore check agent ($agent_label)" "$(check_rows "$agent_got")"
printf '  %-40s %s\n' "restore check defaults ($def_label)" "$(check_rows "$def_got")"

echo
echo "== (c) Block incremental: full, then update aid <= $changed_rows ($changed_rows of $((SCALE * 100000)) rows, contiguous) + checkpoint, then incr"
printf '  %-22s %16s %16s %16s %9s\n' "block incremental" "full repo MiB" "incr repo MiB" "incr db delta MiB" "incr/full"
for mode in on off; do
    printf '  %-22s %16s %16s %16s %8s%%\n' "$mode" "$(mb "${FULL_SIZE[$mode]}")" "$(mb "${INCR_DELTA[$mode]}")" \
        "$(mb "${INCR_DB_DELTA[$mode]}")" "$(calc "100 * ${INCR_DELTA[$mode]} / ${FULL_SIZE[$mode]}")"
done
b_pct=$(calc "100 * ${INCR_DELTA[on]} / ${FULL_SIZE[on]}")
printf '  %-40s %8s%%   target <= 5%%: %s\n' "block on: incr delta / full size" "$b_pct" "$(meets "$b_pct" '<=' 5)"
printf '  %-40s %s\n' "load average at the end" "$(bench_loadavg)"
