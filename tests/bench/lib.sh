# Shared setup for the benchmark scripts in tests/bench/ (sourced, not run).
#
# Benchmarks are run on demand, as root, on a machine with PostgreSQL 15, pgbench and pgBackRest installed:
#   tests/bench/backup.sh      tests/bench/archive.sh      tests/bench/restore.sh      tests/bench/defaults.sh
#   tests/bench/status.sh
# Common environment: KEEP=1 keeps the temp dir (/tmp/brb-XXXX) with every log (PostgreSQL: data*.log,
# agent: <name>.log, pgBackRest: <name>/log/, command output: *.log); the agent, backrestctl and the archive client
# are the NativeAOT builds in artifacts/, as they ship (published if missing); AGENT_EXE= (empty) runs the plain
# build instead (`dotnet backrest-agent.dll`, CONFIG=Debug for the Debug one, default Release). Figures are wall times on this machine: other load skews them, so
# each report ends with the load average.
#
# Everything PostgreSQL/pgBackRest/agent does runs as the postgres OS user; the scripts track every
# postgres cluster and agent they start and stop them on exit (also on error or Ctrl-C).

set -euo pipefail

BENCH_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PGBIN=/usr/lib/postgresql/15/bin
CONFIG="${CONFIG:-Release}"
AGENT_DLL="$BENCH_REPO_ROOT/agent/Agent.Server/bin/$CONFIG/net10.0/backrest-agent.dll"
# AGENT_EXE=path/to/backrest-agent: run that executable; empty: `dotnet $AGENT_DLL`. Default: the NativeAOT publish.
AGENT_EXE="${AGENT_EXE-$BENCH_REPO_ROOT/artifacts/agent/backrest-agent}"
BACKRESTCTL="$BENCH_REPO_ROOT/artifacts/backrestctl/backrestctl"   # NativeAOT, as it ships
ARCHIVE_CLIENT="$BENCH_REPO_ROOT/artifacts/archive-client/pgbackrest-archive"
PG_USER=postgres

BENCH_DIR=""          # /tmp/brb-XXXX, set by bench_init
BENCH_PG_DIRS=()      # data directories of the clusters we started
BENCH_AGENT_PIDS=()   # agent PIDs we started
declare -A BENCH_AGENT_PID_BY_NAME=()

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------- setup

bench_require_root() {
    [[ $EUID -eq 0 ]] || die "run as root (PostgreSQL and pgBackRest run as $PG_USER via runuser)"
    [[ -x $PGBIN/initdb && -x $PGBIN/pgbench ]] || die "PostgreSQL 15 is not installed in $PGBIN"
    command -v pgbackrest >/dev/null || die "pgbackrest is not installed"
    command -v python3 >/dev/null || die "python3 is needed (free ports)"
}

# Builds the agent, backrestctl and the archive client if any of them is missing.
bench_build_if_needed() {
    if [[ -z $AGENT_EXE && ! -f $AGENT_DLL ]]; then
        log "building Agent.sln ($CONFIG)"
        (cd "$BENCH_REPO_ROOT" && dotnet build Agent.sln -c "$CONFIG" -v quiet -nologo) >&2
    fi
    if [[ $AGENT_EXE == "$BENCH_REPO_ROOT/artifacts/agent/backrest-agent" && ! -x $AGENT_EXE ]]; then
        log "publishing the NativeAOT agent"
        (cd "$BENCH_REPO_ROOT" && dotnet publish agent/Agent.Server -c Release -r linux-x64 \
            -o artifacts/agent -v quiet -nologo) >&2
    fi
    if [[ ! -x $ARCHIVE_CLIENT ]]; then
        log "publishing the NativeAOT archive client"
        (cd "$BENCH_REPO_ROOT" && dotnet publish agent/Agent.ArchiveClient -c Release -r linux-x64 \
            -o artifacts/archive-client -v quiet -nologo) >&2
    fi
    if [[ ! -x $BACKRESTCTL ]]; then
        log "publishing the NativeAOT backrestctl"
        (cd "$BENCH_REPO_ROOT" && dotnet publish agent/Agent.Cli -c Release -r linux-x64 \
            -o artifacts/backrestctl -v quiet -nologo) >&2
    fi
}

# Creates the temp dir (short: unix socket paths are limited to 107 bytes), owned by postgres, and the trap.
bench_init() {
    bench_require_root
    bench_build_if_needed
    umask 022
    BENCH_DIR="$(mktemp -d /tmp/brb-XXXX)"
    chown "$PG_USER:$PG_USER" "$BENCH_DIR"
    chmod 755 "$BENCH_DIR"
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    cd "$BENCH_DIR"     # runuser keeps the cwd: make it one postgres can read
    log "bench dir: $BENCH_DIR"
    # Run from a private copy of the build, so a rebuild in the checkout during a long run changes nothing.
    mkdir -p "$BENCH_DIR/bin"
    if [[ -n $AGENT_EXE ]]; then
        cp -a "$(dirname "$AGENT_EXE")" "$BENCH_DIR/bin/agent"
        AGENT_EXE=$BENCH_DIR/bin/agent/$(basename "$AGENT_EXE")
    else
        cp -a "$(dirname "$AGENT_DLL")" "$BENCH_DIR/bin/agent"
    fi
    cp -a "$BACKRESTCTL" "$BENCH_DIR/bin/backrestctl"
    cp -a "$ARCHIVE_CLIENT" "$BENCH_DIR/bin/pgbackrest-archive"
    chmod -R a+rX "$BENCH_DIR/bin"
    AGENT_DLL=$BENCH_DIR/bin/agent/$(basename "$AGENT_DLL")
    BACKRESTCTL=$BENCH_DIR/bin/backrestctl
    ARCHIVE_CLIENT=$BENCH_DIR/bin/pgbackrest-archive
    log "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# One line for the final table: how busy the machine was (other work skews the figures).
bench_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Makes a directory (any depth) under BENCH_DIR owned by postgres; prints its path.
bench_mkdir() {
    local dir="$BENCH_DIR/$1"
    mkdir -p "$dir"
    chown -R "$PG_USER:$PG_USER" "$dir"
    echo "$dir"
}

bench_cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    local pid dir
    for pid in "${BENCH_AGENT_PIDS[@]}"; do
        _agent_kill "$pid"
    done
    for dir in "${BENCH_PG_DIRS[@]}"; do
        if [[ -f $dir/postmaster.pid ]]; then
            runuser -u "$PG_USER" -- "$PGBIN/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >/dev/null 2>&1
        fi
    done
    if [[ -n $BENCH_DIR && -d $BENCH_DIR ]]; then
        # Async archive-push workers detach from the agent/postgres; they carry our unique dir in their
        # --config/--pg1-path arguments. End only those (by PID), then remove the dir.
        local pids
        pids="$(pgrep -u "$PG_USER" -f -- "pgbackrest .*$BENCH_DIR/" || true)"
        if [[ -n $pids ]]; then
            sleep 2
            pids="$(pgrep -u "$PG_USER" -f -- "pgbackrest .*$BENCH_DIR/" || true)"
            for pid in $pids; do kill "$pid" 2>/dev/null; done
        fi
        if [[ ${KEEP:-0} == 1 ]]; then
            log "KEEP=1: kept $BENCH_DIR"
        else
            rm -rf "$BENCH_DIR"
        fi
    fi
    exit "$rc"
}

# ---------------------------------------------------------------------------------------------- helpers

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

now_ns() { date +%s%N; }

# Seconds (3 decimals) since a now_ns value.
elapsed_s() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# median N1 N2 ... (mean of the middle two for an even count)
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) printf "%.3f\n", v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# calc EXPR: floating point arithmetic (awk), e.g. calc "3.1 / 2.9"; prints 4 decimals.
calc() { awk "BEGIN { printf \"%.4f\", $* }"; }

# percentile P N1 N2 ...: the P-th percentile (nearest rank), e.g. percentile 99 "${ms[@]}"
percentile() {
    local p=$1; shift
    printf '%s\n' "$@" | sort -g | awk -v p="$p" '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        r = int((p / 100) * NR + 0.999999); if (r < 1) r = 1; if (r > NR) r = NR; printf "%.3f\n", v[r] }'
}

# wall_ms CMD...: runs a command (output discarded, exit code ignored) and prints its wall time in ms.
wall_ms() {
    local t0
    t0=$(now_ns)
    "$@" >/dev/null 2>&1 || true
    awk -v a="$t0" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }'
}

# scrape_ms PORT: one GET /metrics, its time in ms as curl measures it (request to last byte, no process start-up).
scrape_ms() {
    curl -sf -o /dev/null -w '%{time_total}' "http://127.0.0.1:$1/metrics" | awk '{ printf "%.3f", $1 * 1000 }'
}

# meets VALUE OP TARGET -> "yes" / "NO"   (OP: <= or >=)
meets() {
    awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        if (v != v + 0) { print "NO"; exit }
        ok = (op == "<=") ? (v <= t) : (v >= t); print ok ? "yes" : "NO" }'
}

# Runs a command as postgres (cwd = BENCH_DIR). Output goes to stdout/stderr as usual.
as_pg() { runuser -u "$PG_USER" -- "$@"; }

# ---------------------------------------------------------------------------------------------- postgres

# pg_init DATA_DIR PORT [extra postgresql.conf lines...]: initdb + base settings. Archiving is on, with
# archive_command '/bin/true' (WAL discarded: the loading before the first backup leaves no backlog) until
# pg_set_archive_command sets the real one. Does not start it.
pg_init() {
    local data=$1 port=$2; shift 2
    mkdir -p "$(dirname "$data")"
    chown "$PG_USER:$PG_USER" "$(dirname "$data")"
    as_pg "$PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$data.initdb.log" 2>&1 \
        || { cat "$data.initdb.log" >&2; die "initdb $data failed"; }
    cat >>"$data/postgresql.conf" <<EOF

# --- tests/bench
port = $port
listen_addresses = ''
unix_socket_directories = '$BENCH_DIR'
wal_level = replica
archive_mode = on
archive_command = '/bin/true'
max_wal_size = 4GB
shared_buffers = 512MB
wal_compression = off
log_line_prefix = '%m [%p] '
EOF
    local line
    for line in "$@"; do echo "$line" >>"$data/postgresql.conf"; done
}

# pg_start DATA_DIR [PORT]: start (and track) a cluster; PORT overrides the configured one (restored copies).
pg_start() {
    local data=$1 port=${2:-}
    local opts=()
    [[ -n $port ]] && opts=(-o "-p $port")
    BENCH_PG_DIRS+=("$data")
    as_pg "$PGBIN/pg_ctl" -D "$data" -l "$data.log" "${opts[@]}" -w -t 300 start >/dev/null \
        || { tail -n 30 "$data.log" >&2; die "PostgreSQL in $data did not start"; }
}

pg_stop() {
    local data=$1
    as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 120 stop >/dev/null
}

# psql_q PORT SQL...: one value per line, unaligned, stops on error. Each -c is its own transaction.
psql_q() {
    local port=$1; shift
    local args=()
    local sql
    for sql in "$@"; do args+=(-c "$sql"); done
    as_pg psql -h "$BENCH_DIR" -p "$port" -d postgres -XAtq -v ON_ERROR_STOP=1 "${args[@]}"
}

# Waits until a (restored) cluster has left recovery.
pg_wait_promoted() {
    local port=$1 i
    for ((i = 0; i < 600; i++)); do
        [[ "$(psql_q "$port" 'select pg_is_in_recovery()' 2>/dev/null)" == f ]] && return 0
        sleep 0.5
    done
    die "cluster on port $port is still in recovery after 300 s"
}

# pg_set_archive_command PORT COMMAND: ALTER SYSTEM + reload.
pg_set_archive_command() {
    local port=$1 cmd=$2
    psql_q "$port" "alter system set archive_command = '${cmd//\'/\'\'}'" "select pg_reload_conf()" >/dev/null
    sleep 0.3
}

pg_ready_count() {
    local data=$1
    find "$data/pg_wal/archive_status" -name '*.ready' 2>/dev/null | wc -l
}

# Waits until no .ready file is left (or TIMEOUT seconds pass); prints the seconds it took, or "timeout".
pg_wait_archived() {
    local data=$1 timeout=${2:-600} t0
    t0=$(now_ns)
    while (($(pg_ready_count "$data") > 0)); do
        if (($(now_ns) - t0 > timeout * 1000000000)); then
            echo timeout
            return 0
        fi
        sleep 0.2
    done
    elapsed_s "$t0"
}

# ---------------------------------------------------------------------------------------------- pgbackrest

# pgbr CONF ARGS...: pgbackrest as postgres with a given config file and stanza demo.
pgbr() {
    local conf=$1; shift
    as_pg pgbackrest --config="$conf" --stanza=demo "$@"
}

# Writes a pgbackrest.conf with pgBackRest's OWN defaults (gz level 6, process-max 1, sync archiving):
# nothing set but the paths, plus start-fast=y as in the agent's conf (else a backup waits for a spread
# checkpoint, which says nothing about compression or parallelism). For cluster DATA/PORT, repo REPO.
# Prints the path.
write_pgbackrest_defaults_conf() {
    local name=$1 data=$2 port=$3 repo=$4
    local dir
    dir="$(bench_mkdir "$name")"
    mkdir -p "$dir"/{log,lock,spool} "$repo"
    cat >"$dir/pgbackrest.conf" <<EOF
[global]
repo1-type=posix
repo1-path=$repo
log-path=$dir/log
lock-path=$dir/lock
spool-path=$dir/spool
log-level-file=info
start-fast=y

[demo]
pg1-path=$data
pg1-port=$port
pg1-socket-path=$BENCH_DIR
EOF
    chown -R "$PG_USER:$PG_USER" "$dir" "$repo"
    chmod 600 "$dir/pgbackrest.conf"
    echo "$dir/pgbackrest.conf"
}

# Size in bytes of a repository's backup set directory (backup/demo/LABEL).
repo_backup_bytes() {
    local repo=$1 label=$2
    du -sb "$repo/backup/demo/$label" | cut -f1
}

# ---------------------------------------------------------------------------------------------- agent

# agent_start NAME DATA_DIR PG_PORT [Agent__X=value ...]: starts an agent whose files live in BENCH_DIR/NAME
# (repo NAME/repo1, conf NAME/agent/pgbackrest.conf, socket BENCH_DIR/NAME.sock, log NAME.log), waits
# until /readyz answers 200. Later Agent__X=value override earlier ones (env keeps the last). Sets AGENT_PORT,
# AGENT_METRICS_PORT, AGENT_CONF, AGENT_SOCK, AGENT_REPO, AGENT_HOME, AGENT_PID and AGENT_READY_S (launch to ready).
agent_start() {
    local name=$1 data=$2 pgport=$3; shift 3
    local home
    home="$(bench_mkdir "$name")"
    mkdir -p "$home"/{agent,lock,log,spool,repo1,cwd}
    chown -R "$PG_USER:$PG_USER" "$home"
    AGENT_HOME=$home
    AGENT_PORT=$(free_port)
    AGENT_CONF=$home/agent/pgbackrest.conf
    AGENT_SOCK=$BENCH_DIR/$name.sock
    AGENT_REPO=$home/repo1
    AGENT_METRICS_PORT=$(free_port)
    local env=(
        HOME="$home"
        DOTNET_CLI_TELEMETRY_OPTOUT=1
        DOTNET_NOLOGO=1
        DOTNET_GCgen0size=200000     # as the image sets it (Dockerfile; hex without 0x, which NativeAOT ignores)
        Agent__Stanza=demo
        Agent__Postgres__DataDirectory="$data"
        Agent__Postgres__SocketDirectory="$BENCH_DIR"
        Agent__Postgres__Port="$pgport"
        Agent__Postgres__ArchiveClientPath="$ARCHIVE_CLIENT"
        Agent__PgBackRest__ConfigPath="$AGENT_CONF"
        Agent__PgBackRest__LockPath="$home/lock"
        Agent__PgBackRest__LogPath="$home/log"
        Agent__PgBackRest__SpoolPath="$home/spool"
        Agent__Repositories__0__Type=posix
        Agent__Repositories__0__Path="$AGENT_REPO"
        Agent__Repositories__0__RetentionFull=10
        Agent__Listen__Address=127.0.0.1
        Agent__Listen__Port="$AGENT_PORT"
        Agent__Listen__MetricsPort="$AGENT_METRICS_PORT"
        Agent__Listen__ArchiveSocket="$AGENT_SOCK"
        "$@"
    )
    # The agent's working directory is its ASP.NET content root, which the host watches RECURSIVELY
    # (inotify, for appsettings reload): started from a directory holding the data directory, restores or
    # a repository, the agent spends ~20% of a core on file events under WAL load. Start it in an empty one.
    local agent_cmd=(dotnet "$AGENT_DLL")
    [[ -n $AGENT_EXE ]] && agent_cmd=("$AGENT_EXE")
    cd "$home/cwd"
    local t0
    t0=$(now_ns)
    setsid env "${env[@]}" setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups \
        "${agent_cmd[@]}" >"$BENCH_DIR/$name.log" 2>&1 </dev/null &
    local pid=$!
    cd "$BENCH_DIR"
    BENCH_AGENT_PIDS+=("$pid")
    BENCH_AGENT_PID_BY_NAME[$name]=$pid
    # Ready = /readyz answers 200 (start-up done, PostgreSQL reachable); polled every 10 ms, so AGENT_READY_S is the
    # time from launch to ready within ~10 ms.
    local i
    for ((i = 0; i < 6000; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$BENCH_DIR/$name.log" >&2
            die "agent $name exited during start-up"
        fi
        if curl -sf -o /dev/null "http://127.0.0.1:$AGENT_METRICS_PORT/readyz" 2>/dev/null; then
            AGENT_READY_S=$(elapsed_s "$t0")
            AGENT_PID=$pid
            log "agent $name ready after ${AGENT_READY_S} s (pid $pid, port $AGENT_PORT, metrics $AGENT_METRICS_PORT)"
            return 0
        fi
        sleep 0.01
    done
    tail -n 40 "$BENCH_DIR/$name.log" >&2
    die "agent $name was not ready within 60 s"
}

_agent_kill() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

agent_stop() {
    local name=$1
    local pid=${BENCH_AGENT_PID_BY_NAME[$name]:-}
    [[ -n $pid ]] && _agent_kill "$pid"
    return 0
}

# dead_s3_repo INDEX PORT: the settings (one Agent__...=value a line) of repository INDEX as an S3 repository on
# 127.0.0.1:PORT, where nothing listens: connection refused, and pgBackRest retries it until io-timeout, several times.
dead_s3_repo() {
    local at="Agent__Repositories__$1__"
    printf '%s\n' "${at}Type=s3" "${at}Path=/repo" "${at}S3__Bucket=bucket" "${at}S3__Endpoint=127.0.0.1" "${at}S3__Port=$2" \
        "${at}S3__Region=us-east-1" "${at}S3__UriStyle=path" "${at}S3__VerifyTls=false" "${at}S3__Key=AKIABENCH" \
        "${at}S3__KeySecret=bench-secret"
}

# ctl AGENT_PORT ARGS...: backrestctl against one agent (as root: it is only a gRPC client).
ctl() {
    local port=$1; shift
    "$BACKRESTCTL" --agent "127.0.0.1:$port" "$@"
}

# The archive_command that pushes through the agent whose socket is SOCK.
agent_archive_command() { echo "$ARCHIVE_CLIENT --socket $1 push %p"; }

# Label of the newest backup in a pgbackrest repo (via info JSON).
pgbr_latest_label() {
    local conf=$1
    pgbr "$conf" info --output=json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d[0]["backup"][-1]["label"])'
}

# pgbr_backup_field CONF LABEL FIELD: repository size/delta of a backup from `pgbackrest info --output=json`.
#   FIELD: repo-size | repo-delta | db-size | db-delta  (empty output if pgBackRest omits it, e.g. repo-size on block incr)
pgbr_backup_field() {
    local conf=$1 label=$2 field=$3
    pgbr "$conf" info --output=json | python3 -c '
import json, sys
label, field = sys.argv[1], sys.argv[2]
for b in json.load(sys.stdin)[0]["backup"]:
    if b["label"] == label:
        info = b["info"]
        v = {"repo-size": info["repository"].get("size"), "repo-delta": info["repository"].get("delta"),
             "db-size": info.get("size"), "db-delta": info.get("delta")}[field]
        print("" if v is None else v)
' "$label" "$field"
}

# ---------------------------------------------------------------------------------------------- WAL load

# wal_load_measure PORT DATA ARCHIVE_COMMAND DURATION SQL_FILE NAME:
# sets the archive_command, truncates table t, checkpoints and switches WAL, waits for an empty backlog, then
# runs `pgbench -n -c 1 -T DURATION -f SQL_FILE` and measures over the load's wall time:
#   W_GEN (segments generated = LSN advance / 16 MiB), W_GEN_S (per second), W_ARCH (pg_stat_archiver
#   archived_count delta), W_ARCH_S, W_BACKLOG (.ready files right when the load stops), W_TPS, W_WALL,
#   W_ARCHIVER_CPU (CPU s of PostgreSQL's archiver + the archive_command processes it waited for) and
#   W_AGENT_CPU (CPU s of the agent WAL_AGENT_PID + the pgbackrest processes it waited for; 0 if unset).
#   Detached async archive-push workers are counted in neither. W_SYS_CPU: busy CPU seconds of the whole
#   machine (all CPUs, /proc/stat) during the load: includes them, and anything else running.
wal_load_measure() {
    local port=$1 data=$2 cmd=$3 duration=$4 sql=$5 name=$6
    local lsn0 arch0 t0 gen arch
    pg_set_archive_command "$port" "$cmd"
    psql_q "$port" "truncate t" "checkpoint" "select pg_switch_wal()" >/dev/null
    [[ $(pg_wait_archived "$data" 900) != timeout ]] || die "$name: the backlog did not drain before the run"
    read -r lsn0 arch0 < <(psql_q "$port" "select pg_current_wal_lsn() || ' ' || archived_count from pg_stat_archiver")
    local archiver_pid agent_cpu0 archiver_cpu0
    archiver_pid=$(psql_q "$port" "select pid from pg_stat_activity where backend_type = 'archiver'")
    archiver_cpu0=$(proc_cpu_s "$archiver_pid")
    agent_cpu0=$( [[ -n ${WAL_AGENT_PID:-} ]] && proc_cpu_s "$WAL_AGENT_PID" || echo 0)
    local sys0
    sys0=$(sys_busy_s)
    t0=$(now_ns)
    as_pg "$PGBIN/pgbench" -h "$BENCH_DIR" -p "$port" -n -c 1 -T "$duration" -f "$sql" postgres \
        >"$BENCH_DIR/pgbench-$name.log" 2>&1 || { cat "$BENCH_DIR/pgbench-$name.log" >&2; die "pgbench failed"; }
    W_WALL=$(elapsed_s "$t0")
    W_ARCHIVER_CPU=$(calc "$(proc_cpu_s "$archiver_pid") - $archiver_cpu0")
    W_SYS_CPU=$(calc "$(sys_busy_s) - $sys0")
    W_AGENT_CPU=$(calc "$( [[ -n ${WAL_AGENT_PID:-} ]] && proc_cpu_s "$WAL_AGENT_PID" || echo 0) - $agent_cpu0")
    W_BACKLOG=$(pg_ready_count "$data")
    read -r gen arch < <(psql_q "$port" \
        "select round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$lsn0') / 16777216, 1) || ' ' || (archived_count - $arch0) from pg_stat_archiver")
    W_GEN=$gen
    W_GEN_S=$(calc "$gen / $W_WALL")
    W_ARCH=$arch
    W_ARCH_S=$(calc "$arch / $W_WALL")
    W_TPS=$(awk '/^tps/ { printf "%.1f", $3; exit }' "$BENCH_DIR/pgbench-$name.log")
    log "$name: generated $gen segments, archived $arch in ${W_WALL}s, backlog $W_BACKLOG"
}

# pgbr_log_seconds LOG_FILE: pgBackRest's own duration of the newest completed command in its log file
# ("... command end: completed successfully (1234ms)"), in seconds; splits a wall time into pgBackRest's
# work and the overhead around it.
pgbr_log_seconds() {
    grep -oE 'command end: completed successfully \([0-9]+ms\)' "$1" | tail -n 1 | grep -oE '[0-9]+' \
        | awk '{ printf "%.3f", $1 / 1000 }'
}

# write_load_sql KIND FILE: the single-client write load (one pgbench transaction = 10000 rows into table t):
#   md5     md5(random()::text)                         ~2.5 segments/s here, zstd -1 shrinks WAL ~3x
#   md5x2   md5(random()::text)||md5(random()::text)    poorly compressible (hex), ~2.8 segments/s
#   random  gen_random_bytes(1000) (pgcrypto)           incompressible, the fastest: ~7.5 segments/s
# Prints the CREATE TABLE for t (its column type depends on KIND).
write_load_sql() {
    local kind=$1 file=$2
    case $kind in
        md5) echo "insert into t select md5(random()::text) from generate_series(1, 10000);" >"$file"
             echo "create table t (x text)" ;;
        md5x2) echo "insert into t select md5(random()::text) || md5(random()::text) from generate_series(1, 10000);" >"$file"
               echo "create table t (x text)" ;;
        random) echo "insert into t select gen_random_bytes(1000) from generate_series(1, 10000);" >"$file"
                echo "create table t (x bytea)" ;;
        *) die "unknown LOAD '$kind' (md5, md5x2 or random)" ;;
    esac
    chmod 644 "$file"
}

# proc_cpu_s PID: CPU seconds used by a process and the children it has waited for (utime+stime+cutime+cstime).
proc_cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# accounts_checksum PORT: "count sum(abalance) sum(hash of each row)" of pgbench_accounts: equal output on
# two clusters means the same rows (order-independent). The first field is the row count.
accounts_checksum() {
    psql_q "$1" "select count(*) || ' ' || coalesce(sum(abalance), 0) || ' ' ||
                        coalesce(sum(hashtext(aid::text || ':' || bid::text || ':' || abalance::text)::bigint), 0)
                 from pgbench_accounts"
}

# sys_busy_s: busy (non-idle, non-iowait) CPU seconds of the whole machine since boot, all CPUs.
sys_busy_s() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}

# repo_prune_wal REPO: delete the archived WAL from a posix repository (keeps archive.info), to bound the
# disk use of long WAL benchmarks (incompressible WAL: ~8 GB a minute). Only once nothing is archiving.
repo_prune_wal() {
    local repo=$1
    find "$repo/archive" -mindepth 3 -maxdepth 3 -type d -name '[0-9A-F]*' -exec rm -rf {} + 2>/dev/null || true
}

# The common start of the backup, restore and defaults benchmarks: bench_init, then a PostgreSQL cluster
# (PGPORT, DATA) loaded with pgbench at the given scale.
bench_pgbench_cluster() {
    local scale=$1
    bench_init
    PGPORT=$(free_port)
    DATA=$BENCH_DIR/data
    pg_init "$DATA" "$PGPORT"
    pg_start "$DATA"
    log "pgbench -i -s $scale"
    as_pg "$PGBIN/pgbench" -h "$BENCH_DIR" -p "$PGPORT" -i -s "$scale" -q postgres >"$BENCH_DIR/pgbench-init.log" 2>&1
}

# agent_vs_direct_stats: from agent_times/direct_times (run r of each taken back to back, alternating which goes first)
# and agent_own/direct_own (pgBackRest's own time from its log), sets agent_med, direct_med, ratio and the overheads.
# The ratio is the median of the per-run ratios: pairing cancels the drift of a noisy machine (pgBackRest's own time
# moves by ±30 % between runs here), which a ratio of two medians taken from different runs does not.
agent_vs_direct_stats() {
    local i pair=() agent_over=() direct_over=()
    for i in "${!agent_times[@]}"; do
        pair+=("$(calc "${agent_times[$i]} / ${direct_times[$i]}")")
        agent_over+=("$(calc "${agent_times[$i]} - ${agent_own[$i]}")")
        direct_over+=("$(calc "${direct_times[$i]} - ${direct_own[$i]}")")
    done
    agent_med=$(median "${agent_times[@]}")
    direct_med=$(median "${direct_times[@]}")
    pair_ratios="${pair[*]}"
    ratio=$(median "${pair[@]}")
    agent_overhead=$(median "${agent_over[@]}")
    direct_overhead=$(median "${direct_over[@]}")
}

# The agent-vs-direct table of backup.sh and restore.sh, labels padded to $1 columns (after agent_vs_direct_stats).
print_agent_vs_direct() {
    local w=$1
    printf "%-${w}s %s\n" "settings" "$(grep -E '^(compress-type|compress-level|process-max)=' "$AGENT_CONF" | paste -sd' ')"
    printf "%-${w}s %s\n" "agent runs (s)" "${agent_times[*]}"
    printf "%-${w}s %s\n" "  pgBackRest's own time (its log)" "${agent_own[*]}"
    printf "%-${w}s %s\n" "direct runs (s)" "${direct_times[*]}"
    printf "%-${w}s %s\n" "  pgBackRest's own time (its log)" "${direct_own[*]}"
    printf "%-${w}s %10s   (pgBackRest itself: %s)\n" "agent median (s)" "$agent_med" "$(median "${agent_own[@]}")"
    printf "%-${w}s %10s   (pgBackRest itself: %s)\n" "direct median (s)" "$direct_med" "$(median "${direct_own[@]}")"
    printf "%-${w}s %10s   (wall time minus pgBackRest's own; direct: %s)\n" "time around pgBackRest, median (s)" "$agent_overhead" "$direct_overhead"
    printf "%-${w}s %s\n" "per-run ratios agent / direct" "$pair_ratios"
    printf "%-${w}s %10s   target <= %s: %s   (ratio of the medians: %s)\n" "ratio agent / direct (median of runs)" "$ratio" \
        "$TARGET" "$(meets "$ratio" '<=' "$TARGET")" "$(calc "$agent_med / $direct_med")"
}
