#!/usr/bin/env bash
# The agent end to end on one Debian 12 machine, as root: a throwaway PostgreSQL 15 cluster archiving through
# the archive client, the agent beside it (as the postgres user, posix repo in a temp dir), then stanza-create,
# pgbench data, a full and an incremental backup, status and the backup list, all through backrestctl.
# Exits 0 only if every step succeeded. Everything it starts is stopped on exit; KEEP=1 keeps the temp dir.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
umask 022
pgbin=/usr/lib/postgresql/15/bin
stanza=demo

step() { echo; echo "==> $*"; }
fail() { echo "demo.sh: $*" >&2; exit 1; }

[[ $EUID -eq 0 ]] || fail "run as root (it installs packages and runs PostgreSQL and the agent as postgres)"
command -v dotnet >/dev/null || fail "the .NET SDK (dotnet) is not installed"

# ---------------------------------------------------------------- prerequisites (as tests/run.sh)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
[[ -x $pgbin/initdb && -x $pgbin/pgbench ]] || missing+=(postgresql-15)
command -v pgbackrest >/dev/null || missing+=(pgbackrest)
command -v clang >/dev/null || missing+=(clang)          # NativeAOT archive client
installed zlib1g-dev || missing+=(zlib1g-dev)
if (( ${#missing[@]} > 0 )); then
    step "installing ${missing[*]}"
    if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
        mkdir -p /etc/postgresql-common/createcluster.d   # no default 'main' cluster
        echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/backrest-agent-tests.conf
    fi
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# The agent and the archive client run as postgres from this checkout.
dir="$root"
while [[ "$dir" != / ]]; do
    runuser -u postgres -- test -x "$dir" || chmod o+x "$dir"
    dir="$(dirname "$dir")"
done
find "$root" -path "$root/.git" -prune -o \( \( -type d ! -perm -o=rx \) -o \( -type f ! -perm -o=r \) \) \
    -exec chmod o+rX {} +

step "building"
dotnet publish agent/Agent.Server -c Release -r linux-x64 -o artifacts/agent
dotnet publish agent/Agent.ArchiveClient -c Release -r linux-x64 -o artifacts/archive-client
dotnet publish agent/Agent.Cli -c Release -r linux-x64 -o artifacts/backrestctl
agent="$root/artifacts/agent/backrest-agent"   # NativeAOT, as the image ships it
backrestctl="$root/artifacts/backrestctl/backrestctl"
# Named pgbackrest-archive: pgBackRest's backup refuses an archive_command without "pgbackrest" (error 68).
archive_client="$root/artifacts/archive-client/pgbackrest-archive"
[[ -x $archive_client ]] || archive_client="$root/artifacts/archive-client/backrest-archive"
[[ -x $archive_client ]] || fail "no archive client in artifacts/archive-client"

# ---------------------------------------------------------------- throwaway cluster and agent
free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        local port
        while :; do
            port=$((20000 + RANDOM % 40000))
            # Free if nothing accepts a connection on it.
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
        done
    fi
}

tmp="$(mktemp -d /tmp/bra-demo-XXXXXX)"   # short: Unix socket paths must stay < 108 bytes
chown postgres:postgres "$tmp"
chmod 700 "$tmp"
agent_pid=""

cleanup() {
    local rc=$?
    set +e
    if [[ -n $agent_pid ]] && kill -0 "$agent_pid" 2>/dev/null; then
        kill -TERM "$agent_pid"
        for _ in $(seq 100); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$agent_pid" 2>/dev/null
    fi
    if [[ -f $tmp/data/postmaster.pid ]]; then
        runuser -u postgres -- "$pgbin/pg_ctl" -D "$tmp/data" -m fast -w -t 60 stop >/dev/null \
            || runuser -u postgres -- "$pgbin/pg_ctl" -D "$tmp/data" -m immediate -w -t 60 stop >/dev/null
    fi
    if (( rc != 0 )) && [[ -f $tmp/agent.log ]]; then
        echo "--- agent.log (tail)" >&2; tail -n 40 "$tmp/agent.log" >&2
        echo "--- postgresql.log (tail)" >&2; tail -n 20 "$tmp/postgresql.log" >&2
    fi
    if [[ ${KEEP:-0} == 1 ]]; then
        echo "demo.sh: KEEP=1, kept $tmp"
    else
        rm -rf "$tmp"
    fi
    if (( rc == 0 )); then echo "demo.sh: all steps succeeded"; else echo "demo.sh: FAILED (exit $rc)" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pg_port="$(free_port)"
agent_port="$(free_port)"
while [[ $agent_port == "$pg_port" ]]; do agent_port="$(free_port)"; done
metrics_port="$(free_port)"
while [[ $metrics_port == "$pg_port" || $metrics_port == "$agent_port" ]]; do metrics_port="$(free_port)"; done
socket="$tmp/agent.sock"
as_postgres() { runuser -u postgres -- "$@"; }
ctl() { "$backrestctl" --agent "127.0.0.1:$agent_port" "$@"; }
pgbench() { as_postgres "$pgbin/pgbench" -h "$tmp" -p "$pg_port" -U postgres "$@" postgres; }

step "PostgreSQL 15 in $tmp (socket $tmp/.s.PGSQL.$pg_port)"
as_postgres "$pgbin/initdb" -D "$tmp/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
cat >> "$tmp/data/postgresql.conf" <<CONF

# backrest-agent demo
port = $pg_port
listen_addresses = ''
unix_socket_directories = '$tmp'
wal_level = replica
max_wal_senders = 3
archive_mode = on
archive_command = '$archive_client --socket $socket push %p'
restore_command = '$archive_client --socket $socket get %f "%p"'
CONF
as_postgres "$pgbin/pg_ctl" -D "$tmp/data" -l "$tmp/postgresql.log" -w -t 120 start

step "agent on 127.0.0.1:$agent_port (log $tmp/agent.log)"
for sub in agent lock log spool repo1; do install -d -o postgres -g postgres -m 700 "$tmp/$sub"; done
# setpriv execs (runuser would fork), so $! is the agent's own PID.
setpriv --reuid=postgres --regid=postgres --init-groups env \
    HOME="$tmp" \
    Agent__Stanza="$stanza" \
    Agent__Postgres__DataDirectory="$tmp/data" \
    Agent__Postgres__SocketDirectory="$tmp" \
    Agent__Postgres__Port="$pg_port" \
    Agent__Postgres__User=postgres \
    Agent__Postgres__ArchiveClientPath="$archive_client" \
    Agent__PgBackRest__ConfigPath="$tmp/agent/pgbackrest.conf" \
    Agent__PgBackRest__LockPath="$tmp/lock" \
    Agent__PgBackRest__LogPath="$tmp/log" \
    Agent__PgBackRest__SpoolPath="$tmp/spool" \
    Agent__Repositories__0__Type=posix \
    Agent__Repositories__0__Path="$tmp/repo1" \
    Agent__Listen__Address=127.0.0.1 \
    Agent__Listen__Port="$agent_port" \
    Agent__Listen__MetricsPort="$metrics_port" \
    Agent__Listen__ArchiveSocket="$socket" \
    "$agent" </dev/null >"$tmp/agent.log" 2>&1 &
agent_pid=$!
deadline=$((SECONDS + 30))
until ctl status >/dev/null 2>&1; do
    kill -0 "$agent_pid" 2>/dev/null || fail "the agent exited during start-up"
    (( SECONDS < deadline )) || fail "the agent did not answer 'backrestctl status' within 30 s"
    sleep 0.2
done

step "backrestctl stanza-create"
ctl stanza-create
step "pgbench -i -s 10"
pgbench -i -q -s 10
step "backrestctl backup --type full --wait"
ctl backup --type full --wait
step "pgbench -T 10 -c 2"
pgbench -n -T 10 -c 2
step "backrestctl backup --type incr --wait"
ctl backup --type incr --wait
step "backrestctl status"
ctl status
step "backrestctl backups"
ctl backups
