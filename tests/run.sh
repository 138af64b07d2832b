#!/usr/bin/env bash
# Builds and runs every test on a Debian 12 machine, as root, with the .NET SDK installed.
# Installs what is missing (PostgreSQL 15, pgBackRest, the NativeAOT toolchain), lets the postgres OS user
# read the checkout (the integration tests run the built agent as postgres), publishes the NativeAOT
# agent, archive client and backrestctl, then runs `dotnet test`. Extra arguments go to dotnet test, e.g.:
#   tests/run.sh --filter FullyQualifiedName~HarnessTests
# KEEP_TEST_DIRS=1 keeps each test's /tmp/bra-* directory.
set -euo pipefail

started=$SECONDS
report_elapsed() {
    local rc=$? elapsed=$((SECONDS - started))
    echo "tests/run.sh: $( ((rc == 0)) && echo passed || echo "FAILED (exit $rc)") in $((elapsed / 60))m$((elapsed % 60))s"
}
trap report_elapsed EXIT

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# Everything built here must be readable by the postgres user.
umask 022

if [[ $EUID -ne 0 ]]; then
    echo "tests/run.sh: run as root (it installs packages and starts PostgreSQL as the postgres user)" >&2
    exit 1
fi
if ! command -v dotnet >/dev/null; then
    echo "tests/run.sh: the .NET SDK (dotnet) is not installed" >&2
    exit 1
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
# pgbench ships in postgresql-15 (postgresql-contrib-15 is a virtual package it provides).
[[ -x /usr/lib/postgresql/15/bin/initdb && -x /usr/lib/postgresql/15/bin/pgbench ]] \
    || missing+=(postgresql-15 postgresql-contrib-15)
command -v pgbackrest >/dev/null || missing+=(pgbackrest)
command -v clang >/dev/null || missing+=(clang)
installed zlib1g-dev || missing+=(zlib1g-dev)
# deploy/kubernetes is rendered with `kubectl kustomize` (these machines ship kubectl; Debian's is the fallback).
command -v kubectl >/dev/null || missing+=(kubernetes-client)
# promtool checks the shipped alerts; the Prometheus server scrapes a running agent in the integration tests.
command -v promtool >/dev/null && command -v prometheus >/dev/null || missing+=(prometheus)
# The storage emulators (tests/emulators) run on node and npm.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if (( ${#missing[@]} > 0 )); then
    echo "tests/run.sh: installing ${missing[*]}"
    if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
        # The tests start their own clusters; don't let the package create and start a 'main' cluster.
        mkdir -p /etc/postgresql-common/createcluster.d
        echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/backrest-agent-tests.conf
    fi
    # The tests start their own Prometheus on a free port: the package's service must not start (and hold 9090).
    policy_added=
    if [[ " ${missing[*]} " == *" prometheus "* && ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    installed_ok=1
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" || installed_ok=
    if [[ -n "$policy_added" ]]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    [[ -n "$installed_ok" ]] || { echo "tests/run.sh: installing ${missing[*]} failed" >&2; exit 1; }
    if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
        systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
fi

# The postgres user runs the built agent and archive client from this checkout: it needs to traverse every
# parent directory and read the files.
dir="$root"
while [[ "$dir" != / ]]; do
    if ! runuser -u postgres -- test -x "$dir"; then
        echo "tests/run.sh: chmod o+x $dir (so that the postgres user can reach the checkout)"
        chmod o+x "$dir"
    fi
    dir="$(dirname "$dir")"
done
find "$root" -path "$root/.git" -prune -o \( \( -type d ! -perm -o=rx \) -o \( -type f ! -perm -o=r \) \) \
    -exec chmod o+rX {} +

# The storage emulators the repository tests start (Azurite, s3rver, firebase-tools' GCS emulator), pinned by
# tests/emulators/package-lock.json. Installed once per lock file into a cache directory outside the checkout (the
# harness derives the same path, see HarnessPaths.EmulatorModules), so later runs and fresh clones skip npm.
# --ignore-scripts: nothing used needs an install script (re2's would download a prebuilt binary).
emulators_lock=tests/emulators/package-lock.json
emulators_dir="${BACKREST_EMULATORS_CACHE:-/var/cache/backrest-agent-tests}/emulators-$(sha256sum "$emulators_lock" | cut -c1-16)"
if [[ ! -f "$emulators_dir/installed" ]]; then
    echo "tests/run.sh: installing the storage emulators into $emulators_dir (npm ci, ~2 min)"
    rm -rf "$emulators_dir"
    mkdir -p "$emulators_dir"
    cp tests/emulators/package.json "$emulators_lock" "$emulators_dir/"
    (cd "$emulators_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    touch "$emulators_dir/installed"
fi
export BACKREST_EMULATORS_CACHE="${BACKREST_EMULATORS_CACHE:-/var/cache/backrest-agent-tests}"

# The alerts we ship, checked and unit-tested by promtool (every alert firing and not firing).
tests/prometheus/check-rules.sh

# The NativeAOT binaries as they ship (the integration tests and benchmarks run these; see HarnessPaths).
dotnet publish agent/Agent.Server -c Release -r linux-x64 -o artifacts/agent
dotnet publish agent/Agent.ArchiveClient -c Release -r linux-x64 -o artifacts/archive-client
dotnet publish agent/Agent.Cli -c Release -r linux-x64 -o artifacts/backrestctl
dotnet test Agent.sln -c Release --logger "console;verbosity=normal" "$@"
