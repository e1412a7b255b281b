#!/usr/bin/env bash
# tools/gnocchi/service.sh - a real Gnocchi 4.7 (API + metricd) for tests.
#
#   tools/gnocchi/service.sh install [--force]
#       create Gnocchi's own venv (TELEMETER_GNOCCHI_VENV, default
#       <repo>/.gnocchi-venv) with gnocchi 4.7.x, its PostgreSQL indexer
#       dependencies (psycopg2-binary) and waitress;
#       a no-op when the stamp matches (GNOCCHI_REQUIREMENTS below)
#
# Starting and stopping goes through tools/services.sh, which sources this
# file for the service functions (gnocchi_start, _wait, _stop, ...):
#
#   TELEMETER_GNOCCHI_PORT=8141 tools/services.sh up gnocchi
#   tools/services.sh env gnocchi   # TELEMETER_TEST_GNOCCHI_URL=http://...
#   tools/services.sh stop gnocchi  # data kept; `start gnocchi` resumes
#   tools/services.sh down gnocchi
#
# One instance = <state>/gnocchi-PORT/ holding: a private PostgreSQL
# cluster on PORT+1 (initdb'd by services.sh's own postgresql functions;
# Gnocchi's indexer, database "gnocchi", created and then gnocchi-upgrade),
# the file storage (storage/), gnocchi.conf, the API on 127.0.0.1:PORT
# (gnocchi.rest.wsgi under waitress, tools/gnocchi/api.py; auth_mode =
# basic: any user name, no password) and one gnocchi-metricd worker that
# processes new measures every second.  Gnocchi is kept out of telemeter's
# venv: its pins (SQLAlchemy, numpy, oslo.*) are its own.
set -euo pipefail

GNOCCHI_TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GNOCCHI_REPO=$(cd "$GNOCCHI_TOOLS/../.." && pwd)
GNOCCHI_VENV=${TELEMETER_GNOCCHI_VENV:-$GNOCCHI_REPO/.gnocchi-venv}
# gnocchi[postgresql] without its psycopg2 (an sdist needing libpq-dev and
# a compiler): the same dependencies, with the psycopg2-binary wheel.
GNOCCHI_REQUIREMENTS=('gnocchi>=4.7,<4.8' 'psycopg2-binary>=2.9'
    'oslo.db>=4.29.0' 'sqlalchemy>=1.4.24' 'sqlalchemy-utils'
    'alembic>=0.7.6' 'waitress>=2.1')

gnocchi_install() {   # $1 = --force to reinstall
    local stamp=$GNOCCHI_VENV/.telemeter-gnocchi-stamp want t0
    want="${GNOCCHI_REQUIREMENTS[*]}"
    if [ "${1:-}" != --force ] && [ -f "$stamp" ] \
            && [ "$(cat "$stamp")" = "$want" ] \
            && "$GNOCCHI_VENV/bin/python" -c 'import gnocchi, waitress' \
                2>/dev/null; then
        echo "==> gnocchi venv $GNOCCHI_VENV is up to date"
        return 0
    fi
    t0=$(date +%s)
    echo "==> gnocchi venv $GNOCCHI_VENV: pip install ${GNOCCHI_REQUIREMENTS[*]}"
    [ -x "$GNOCCHI_VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$GNOCCHI_VENV"
    rm -f "$stamp"
    "$GNOCCHI_VENV/bin/python" -m pip install -q --progress-bar off \
        "${GNOCCHI_REQUIREMENTS[@]}"
    echo "$want" > "$stamp"
    echo "    took $(( $(date +%s) - t0 )) s"
}

# ------------------------------------------- functions for tools/services.sh
# They rely on services.sh's helpers (port_of, dir_of, pid_alive, stop_pid,
# wait_until, log, pg_bindir, port_open).

gnocchi_pg_port() { echo $(( $(port_of gnocchi) + 1 )); }

# tools/services.sh for Gnocchi's private PostgreSQL, inside its state dir.
gnocchi_pg() {
    TELEMETER_SERVICES_DIR=$(dir_of gnocchi) \
        TELEMETER_PG_PORT=$(gnocchi_pg_port) \
        bash "$GNOCCHI_TOOLS/../services.sh" "$@"
}

gnocchi_installed() {
    if [ ! -x "$GNOCCHI_VENV/bin/gnocchi-metricd" ] \
            || ! "$GNOCCHI_VENV/bin/python" -c 'import waitress' 2>/dev/null; then
        log "Gnocchi is not installed in $GNOCCHI_VENV: run" \
            "tools/gnocchi/service.sh install (tools/install.sh does)"
        return 1
    fi
    postgresql_installed
}

gnocchi_running() { pid_alive "$(dir_of gnocchi)/launcher.pid"; }

gnocchi_conf() {   # $1 = state dir
    cat > "$1/gnocchi.conf" <<CONF
[DEFAULT]
debug = false
log_file = $1/gnocchi.log
parallel_operations = 2
# Locks in files: the default (the indexer's PostgreSQL through tooz) opens
# a connection per lock, ~100 a second from one metricd, and the thousands
# of TIME-WAIT loopback ports they leave made other test servers fail to
# bind their ports ("Address already in use").
coordination_url = file://$1/locks
[api]
auth_mode = basic
[indexer]
url = postgresql+psycopg2://postgres@127.0.0.1:$(gnocchi_pg_port)/gnocchi
[storage]
driver = file
file_basepath = $1/storage
[metricd]
workers = 1
metric_processing_delay = 1
metric_cleanup_delay = 30
CONF
}

gnocchi_start() {   # $1 = 1 to reuse kept data
    local keep=$1 p dir pgbin
    p=$(port_of gnocchi)
    dir=$(dir_of gnocchi)
    pgbin=$(pg_bindir)
    if [ "$keep" = 1 ]; then
        gnocchi_pg start postgresql 2>> "$dir/setup.log" || return 1
    else
        gnocchi_pg up postgresql 2>> "$dir/setup.log" || return 1
    fi
    gnocchi_conf "$dir"
    if [ "$keep" != 1 ] || [ ! -f "$dir/upgraded" ]; then
        "$pgbin/psql" -q -h 127.0.0.1 -p "$(gnocchi_pg_port)" -U postgres \
            -d postgres -c 'CREATE DATABASE gnocchi' >> "$dir/setup.log" 2>&1 \
            || { log "cannot create Gnocchi's database"; cat "$dir/setup.log" >&2; return 1; }
        (cd "$dir" && "$GNOCCHI_VENV/bin/gnocchi-upgrade" \
            --config-file "$dir/gnocchi.conf" >> "$dir/setup.log" 2>&1) \
            || { log "gnocchi-upgrade failed"; tail -n 30 "$dir/setup.log" >&2; return 1; }
        touch "$dir/upgraded"
    fi
    (cd "$dir" && exec setsid "$GNOCCHI_VENV/bin/python" \
        "$GNOCCHI_TOOLS/api.py" --config-file "$dir/gnocchi.conf" \
        --port "$p" > "$dir/api.log" 2>&1 < /dev/null) &
    echo $! > "$dir/launcher.pid"
    (cd "$dir" && exec setsid "$GNOCCHI_VENV/bin/gnocchi-metricd" \
        --config-file "$dir/gnocchi.conf" > "$dir/metricd.log" 2>&1 \
        < /dev/null) &
    echo $! > "$dir/metricd.pid"
}

# api.py imports the application (config, indexer) before it binds.
gnocchi_ready() { port_open "$(port_of gnocchi)"; }

gnocchi_wait() {
    wait_until "$(dir_of gnocchi)/launcher.pid" gnocchi gnocchi_ready
}

gnocchi_stop() {
    local dir
    dir=$(dir_of gnocchi)
    stop_pid "$dir/launcher.pid" TERM 15
    # metricd's cotyledon master stops its workers on SIGTERM.
    stop_pid "$dir/metricd.pid" TERM 15
    [ ! -d "$dir/postgresql-$(gnocchi_pg_port)" ] || gnocchi_pg stop postgresql 2> /dev/null
}

gnocchi_log() {
    tail -n 30 "$(dir_of gnocchi)/api.log" "$(dir_of gnocchi)/metricd.log" \
        "$(dir_of gnocchi)/setup.log" 2>/dev/null || true
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case "${1:-}" in
        install) gnocchi_install "${2:-}" ;;
        *) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
           exit 2 ;;
    esac
fi
