#!/usr/bin/env bash
# tools/run-local.sh - install telemeter and run the whole suite on this
# machine: a throwaway RabbitMQ on 127.0.0.1, the three daemons, SQLite
# storage under var/local/, host samples every 10 seconds, and
# telemeter-api (no auth) on http://127.0.0.1:8777 to read them.
#
#   tools/run-local.sh [up]     install (tools/install.sh), start everything,
#                               wait for the first stored samples, show them
#   tools/run-local.sh samples [--limit N] [--meter NAME] [--resource ID]
#                               print the newest stored samples
#   tools/run-local.sh status   which daemons run; where the logs are
#   tools/run-local.sh down     stop the daemons (polling, notification agent,
#                               collector: nothing in flight is lost), then
#                               the broker
#
# Everything lives in var/local/ (config, logs, telemeter.db); delete that
# directory after `down` for a clean start.  Environment:
#   TELEMETER_RABBIT_PORT  broker port (default 5673)
#   TELEMETER_API_PORT     telemeter-api port (default 8777)
#   TELEMETER_LOCAL_NO_APT=1  skip apt in tools/install.sh
#   TELEMETER_LOCAL_STATE  state directory (default var/local)
#   TELEMETER_LOCAL_GNOCCHI=1  also store the samples in a local Gnocchi
#                          (tools/services.sh gnocchi on
#                          TELEMETER_GNOCCHI_PORT, default 8141; the
#                          collector's gnocchi dispatcher next to SQLite;
#                          telemeter-upgrade creates the resource types).
#                          Read when var/local/telemeter.conf is written.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
STATE=${TELEMETER_LOCAL_STATE:-$REPO/var/local}
VENV=${TELEMETER_VENV:-$REPO/.venv}
BIN=$VENV/bin
CONF=$STATE/telemeter.conf
DAEMONS=(telemeter-collector telemeter-agent-notification telemeter-polling
         telemeter-api)
API_PORT=${TELEMETER_API_PORT:-8777}
export TELEMETER_SERVICES_DIR=$STATE/services
export TELEMETER_RABBIT_PORT=${TELEMETER_RABBIT_PORT:-5673}
export TELEMETER_GNOCCHI_PORT=${TELEMETER_GNOCCHI_PORT:-8141}

say() { echo "==> [run-local] $*"; }
die() { echo "run-local.sh: ERROR: $*" >&2; exit 1; }

write_config() {
    mkdir -p "$STATE/log"
    cat > "$STATE/polling.yaml" <<YAML
# Poll the host pollster family every 10 seconds.
sources:
  - name: host
    interval: 10
    meters: ["host.*"]
YAML
    cat > "$CONF" <<CONFEOF
# Written by tools/run-local.sh; see etc/telemeter/telemeter.conf.sample
# for every option.
[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:$TELEMETER_RABBIT_PORT/
log_dir = $STATE/log
[database]
connection = sqlite:///$STATE/telemeter.db
[polling]
cfg_file = $STATE/polling.yaml
[collector]
# UDP is not needed here: samples travel over the broker.
udp_address =
[publisher]
telemetry_secret = $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
[api]
# Local use only: no Keystone, every request is admin.
auth_mode = noauth
host = 127.0.0.1
port = $API_PORT
CONFEOF
    if [ "${TELEMETER_LOCAL_GNOCCHI:-0}" = 1 ]; then
        cat >> "$CONF" <<CONFEOF
[DEFAULT]
meter_dispatchers = database
meter_dispatchers = gnocchi
[gnocchi]
auth_mode = basic
url = http://127.0.0.1:$TELEMETER_GNOCCHI_PORT
[dispatcher_gnocchi]
filter_project =
CONFEOF
    fi
}

# Whether the configuration stores into Gnocchi.
uses_gnocchi() { grep -q '^meter_dispatchers = gnocchi' "$CONF" 2>/dev/null; }

daemon_pid() { cat "$STATE/$1.pid" 2>/dev/null || true; }

daemon_running() {
    local pid
    pid=$(daemon_pid "$1")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

start_daemon() {
    local name=$1; shift
    if daemon_running "$name"; then
        say "$name already running (pid $(daemon_pid "$name"))"
        return
    fi
    setsid "$BIN/$name" --config-file "$CONF" "$@" \
        > "$STATE/log/$name.stdout" 2>&1 < /dev/null &
    echo $! > "$STATE/$name.pid"
    say "started $name (pid $!, log $STATE/log/$name.log)"
}

stop_daemon() {
    local name=$1 pid
    pid=$(daemon_pid "$name")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        # Up to graceful_shutdown_timeout (60 s) + 5 for the batches in
        # flight; a daemon with nothing in flight is gone in a second.
        for _ in $(seq 1 650); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "run-local.sh: $name did not stop in 65 s, killing" >&2
            kill -KILL -- "-$pid" 2>/dev/null || true
        fi
        say "stopped $name"
    fi
    rm -f "$STATE/$name.pid"
}

show_samples() {
    "$BIN/python" tools/show-samples.py --config-file "$CONF" "$@"
}

cmd_up() {
    local apt=()
    [ "${TELEMETER_LOCAL_NO_APT:-0}" = 1 ] && apt=(--no-apt)
    say "installing (tools/install.sh ${apt[*]:-})"
    bash tools/install.sh "${apt[@]}"
    [ -f "$CONF" ] || write_config
    say "starting RabbitMQ on 127.0.0.1:$TELEMETER_RABBIT_PORT"
    bash tools/services.sh start rabbitmq
    if uses_gnocchi; then
        say "starting Gnocchi on 127.0.0.1:$TELEMETER_GNOCCHI_PORT"
        bash tools/services.sh start gnocchi
    fi
    say "creating the database schema (telemeter-upgrade)"
    "$BIN/telemeter-upgrade" --config-file "$CONF"
    start_daemon telemeter-collector
    start_daemon telemeter-agent-notification
    start_daemon telemeter-polling --polling-namespaces compute
    start_daemon telemeter-api
    say "waiting for the first samples to be stored"
    for _ in $(seq 1 60); do
        if show_samples --limit 10 > "$STATE/first-samples.txt" 2>/dev/null
        then
            cat "$STATE/first-samples.txt"
            cat <<TXT

telemeter is running. Host samples arrive every 10 seconds.
  see them:   tools/run-local.sh samples [--limit N] [--meter host.load.1min]
  API:        http://127.0.0.1:$API_PORT/ (a browser gets the operator page)
  client:     $REPO/.venv-ceilometerclient/bin/ceilometer \\
                --os-endpoint http://127.0.0.1:$API_PORT --os-token noauth \\
                statistics -m host.load.1min -p 60
  logs:       $STATE/log/
  stop:       tools/run-local.sh down
TXT
            return 0
        fi
        sleep 1
    done
    die "no sample stored within 60 s; look at the logs in $STATE/log/"
}

cmd_status() {
    local name
    for name in "${DAEMONS[@]}"; do
        if daemon_running "$name"; then
            echo "$name: running (pid $(daemon_pid "$name"))"
        else
            echo "$name: stopped"
        fi
    done
    bash tools/services.sh status rabbitmq || true
    if uses_gnocchi; then bash tools/services.sh status gnocchi || true; fi
    echo "logs: $STATE/log/"
}

cmd_down() {
    local name
    # Data-flow order, each stop waiting for the daemon to exit: the
    # polling agent publishes nothing more, the notification agent then
    # finishes its batches in flight and publishes them, and only then
    # does the collector, which stores them, stop - before the broker.
    stop_daemon telemeter-api
    for name in telemeter-polling telemeter-agent-notification \
                telemeter-collector; do
        stop_daemon "$name"
    done
    bash tools/services.sh stop rabbitmq
    if uses_gnocchi; then bash tools/services.sh stop gnocchi; fi
}

case "${1:-up}" in
    up) cmd_up ;;
    samples) shift; [ -f "$CONF" ] || die "nothing set up: run tools/run-local.sh"
             show_samples "$@" ;;
    status) cmd_status ;;
    down) cmd_down ;;
    -h|--help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$1' (up, samples, status, down)" ;;
esac
