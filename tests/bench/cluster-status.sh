#!/usr/bin/env bash
# "status across a cluster is one round trip": backrestctl status over AGENTS agents vs over one, and vs the
# `pgbackrest info` that a status without the agent's cache would run.
#
#   tests/bench/cluster-status.sh                 # AGENTS=100 RUNS=5
#
# One real PostgreSQL and one real agent (stanza created, one full backup). The agent listens on 0.0.0.0 and Linux
# answers every 127.0.0.0/8 address on loopback, so 127.0.0.1:P ... 127.0.0.AGENTS:P are AGENTS distinct agent
# addresses to backrestctl: AGENTS connections, each with the cluster view's four calls (GetRole, GetStatus, ListBackups
# and GetRecoveryWindow), all at once, each under --timeout. The agent answers them from its caches: repositories as
# last refreshed, PostgreSQL from one reading shared by the calls of the same second (GetRecoveryWindow joins a read
# under way or makes its own), so a burst costs a few PostgreSQL connections, not one or more per call. That one agent
# serves every call (4 x AGENTS), where AGENTS pods would each serve their own four: the calls' share of the figure is
# an upper bound; its PostgreSQL share is what one pod pays.
# Target: the median wall time of `status` over AGENTS agents <= 1 s, every row answered (role and cached status). The
# view exits 1 here: AGENTS agents all report the one primary, which it names as a split brain.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

AGENTS=${AGENTS:-100}
RUNS=${RUNS:-5}
((AGENTS >= 1 && AGENTS <= 254)) || die "AGENTS must be 1..254 (addresses 127.0.0.1 to 127.0.0.AGENTS)"

bench_init
PGPORT=$(free_port)
DATA=$BENCH_DIR/data
# Room for a connection per call, as before the shared reading (the figure would not hide a regression behind refusals).
pg_init "$DATA" "$PGPORT" "max_connections = $((4 * AGENTS + 20))"
pg_start "$DATA"
psql_q "$PGPORT" "create table t as select g from generate_series(1, 100000) g" >/dev/null

agent_start agent "$DATA" "$PGPORT" Agent__Listen__Address=0.0.0.0 Agent__Tls__AllowPlaintext=true
pg_set_archive_command "$PGPORT" "$(agent_archive_command "$AGENT_SOCK")"
ctl "$AGENT_PORT" stanza-create >/dev/null
ctl "$AGENT_PORT" backup --type full --wait >"$BENCH_DIR/backup.log"
one="127.0.0.1:$AGENT_PORT"
many=$(for ((i = 1; i <= AGENTS; i++)); do printf '127.0.0.%d:%d,' "$i" "$AGENT_PORT"; done)
many=${many%,}

# time_status ADDRESSES: wall seconds of one `backrestctl --agent ADDRESSES status --json` (the cluster view for
# several addresses), and how many rows answered.
time_status() {
    local start rc=0
    start=$(now_ns)
    "$BACKRESTCTL" --agent "$1" --timeout 10 status --json >"$BENCH_DIR/status.json" 2>"$BENCH_DIR/status.err" || rc=$?
    STATUS_S=$(elapsed_s "$start")
    STATUS_RC=$rc
}

declare -a ONE_T MANY_T INFO_T
answered=0
for ((r = 1; r <= RUNS; r++)); do
    time_status "$one"
    [[ $STATUS_RC == 0 ]] || { cat "$BENCH_DIR/status.err" >&2; die "status over one agent failed"; }
    ONE_T+=("$STATUS_S")
    time_status "$many"
    # Exit 1 is expected: every address is the same primary, so the view reports AGENTS primaries (split brain).
    [[ $STATUS_RC == 0 || $STATUS_RC == 1 ]] || { head -c 2000 "$BENCH_DIR/status.err" >&2; die "status over $AGENTS agents failed (exit $STATUS_RC)"; }
    MANY_T+=("$STATUS_S")
    answered=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(1 for a in d["agents"] if a["reachable"] and a["role"]["postgresUp"] and a.get("repositories")))' "$BENCH_DIR/status.json")
    start=$(now_ns)
    pgbr "$AGENT_CONF" info >/dev/null
    INFO_T+=("$(elapsed_s "$start")")
    log "run $r: one agent ${ONE_T[-1]} s, $AGENTS agents ${MANY_T[-1]} s ($answered answered), pgbackrest info ${INFO_T[-1]} s"
done

one_med=$(median "${ONE_T[@]}")
many_med=$(median "${MANY_T[@]}")
info_med=$(median "${INFO_T[@]}")
echo
echo "backrestctl status, median of $RUNS runs (NativeAOT backrestctl, one agent serving every address)"
printf '  %-38s %8s s\n' "one agent (one agent's full status)" "$one_med"
printf '  %-38s %8s s   ratio to one agent %s   rows answered %s/%s\n' "$AGENTS agents (cluster view)" "$many_med" \
    "$(calc "$many_med / $one_med")" "$answered" "$AGENTS"
printf '  %-38s %8s s   (what one status would cost without the cache)\n' "pgbackrest info, once" "$info_med"
printf '  target: %s agents <= 1 s: %s; every row answered: %s\n' "$AGENTS" "$(meets "$many_med" "<=" 1)" \
    "$( [[ $answered == "$AGENTS" ]] && echo yes || echo NO)"
echo "  load average: $(bench_loadavg)"
