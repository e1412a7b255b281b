#!/usr/bin/env bash
# tools/rabbitmq-cluster.sh - a throwaway 3-node RabbitMQ cluster on loopback
# for telemeter's scale-out tests (issue 15), beside tools/services.sh's
# single broker.
#
#   tools/rabbitmq-cluster.sh up            start 3 fresh nodes, cluster them
#                                           (join_cluster), wait until ready
#   tools/rabbitmq-cluster.sh down          stop every node, delete all state
#   tools/rabbitmq-cluster.sh stop    N     graceful stop of node N (1..3),
#                                           data kept
#   tools/rabbitmq-cluster.sh kill    N     SIGKILL node N's Erlang VM
#   tools/rabbitmq-cluster.sh start   N     start node N again on its kept
#                                           data; it rejoins the cluster
#   tools/rabbitmq-cluster.sh restart N     stop N + start N
#   tools/rabbitmq-cluster.sh status  [N]   exit 0 if the node(s) run, else 3
#   tools/rabbitmq-cluster.sh env [--export]
#                                           print TELEMETER_TEST_RABBIT_CLUSTER_URL
#                                           (a transport URL listing all nodes)
#   tools/rabbitmq-cluster.sh ctl     N ARGS...
#                                           rabbitmqctl against node N
#   tools/rabbitmq-cluster.sh queues  N ARGS...
#                                           rabbitmq-queues against node N
#                                           (grow, shrink, delete_member,
#                                           quorum_status, ...)
#
# Ports (TELEMETER_RABBIT_CLUSTER_PORT=P, default 5800, P <= 35520):
#   AMQP of node N   P + N - 1            (5800, 5801, 5802)
#   epmd             P + 10000            (one private epmd shared by the
#                                          three nodes: Erlang finds a peer
#                                          node through the epmd port of its
#                                          host, so they must agree on it)
#   distribution     P + 20000 + N - 1
#   rabbitmqctl      P + 30000 .. P + 30010
# All bound to 127.0.0.1. State: ${TELEMETER_SERVICES_DIR:-/tmp/telemeter-
# services}/rabbitmq-cluster-P/{home (the shared Erlang cookie), node1, ...}.
# Node N is telemeter-c<P>-<N>@localhost. Each node runs in its own session
# (setsid) with its launcher and beam.smp PIDs recorded.
#
# The Erlang VMs are started with +sbwt none (no busy waiting) and two
# schedulers each, so three nodes do not eat a 2-core box while idle.
set -euo pipefail
umask 022

BASE=${TELEMETER_RABBIT_CLUSTER_PORT:-5800}
STATE_ROOT=${TELEMETER_SERVICES_DIR:-/tmp/telemeter-services}
TIMEOUT=${TELEMETER_SERVICES_TIMEOUT:-90}
LIBBIN=/usr/lib/rabbitmq/bin
NODES=(1 2 3)
ROOT=$STATE_ROOT/rabbitmq-cluster-$BASE

log() { echo "rabbitmq-cluster.sh: $*" >&2; }
die() { echo "rabbitmq-cluster.sh: ERROR: $*" >&2; exit 1; }

case "$BASE" in ''|*[!0-9]*) die "TELEMETER_RABBIT_CLUSTER_PORT is not a number" ;; esac
[ "$BASE" -ge 1024 ] && [ "$BASE" -le 35520 ] \
    || die "TELEMETER_RABBIT_CLUSTER_PORT=$BASE must be in 1024..35520"

# port_open, pid_alive
. "$(dirname "${BASH_SOURCE[0]}")/lib/loopback.sh"
amqp_port() { echo $((BASE + $1 - 1)); }
node_name() { echo "telemeter-c$BASE-$1@localhost"; }
node_dir() { echo "$ROOT/node$1"; }

check_node() {
    case "${1:-}" in 1|2|3) ;; *) die "node must be 1, 2 or 3, not '${1:-}'" ;; esac
}

node_env() {   # the whole environment of node $1's server and CLI
    local n=$1 dir p
    dir=$(node_dir "$n")
    p=$(amqp_port "$n")
    cat <<EOF
PATH=/usr/sbin:/usr/bin:/sbin:/bin
LANG=C.UTF-8
HOME=$ROOT/home
RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
RABBITMQ_NODENAME=$(node_name "$n")
RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
RABBITMQ_NODE_PORT=$p
RABBITMQ_DIST_PORT=$((BASE + 20000 + n - 1))
RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
RABBITMQ_MNESIA_BASE=$dir/mnesia
RABBITMQ_LOG_BASE=$dir/log
RABBITMQ_PID_FILE=$dir/beam.pid
ERL_EPMD_ADDRESS=127.0.0.1
ERL_EPMD_PORT=$((BASE + 10000))
RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1} +S 2:2 +sbwt none +sbwtdcpu none +sbwtdio none
RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}
RABBITMQ_CTL_DIST_PORT_MIN=$((BASE + 30000))
RABBITMQ_CTL_DIST_PORT_MAX=$((BASE + 30010))
EOF
}

running() { pid_alive "$(node_dir "$1")/launcher.pid"; }

tool() {   # tool rabbitmqctl|rabbitmq-queues N args...
    local cli=$1 n=$2 dir
    local -a envarr
    shift 2
    dir=$(node_dir "$n")
    [ -d "$dir" ] || die "no state for node $n in $dir: run '$0 up' first"
    mapfile -t envarr < <(node_env "$n")
    (cd "$dir" && env -i "${envarr[@]}" "$LIBBIN/$cli" -n "$(node_name "$n")" "$@")
}

ctl() { tool rabbitmqctl "$@"; }   # ctl N rabbitmqctl-args...

start_node() {
    local n=$1 dir p
    local -a envarr
    dir=$(node_dir "$n")
    p=$(amqp_port "$n")
    if running "$n"; then
        log "node $n already running"
        return 0
    fi
    port_open "$p" && die "127.0.0.1:$p is in use by another program"
    mkdir -p "$dir/mnesia" "$dir/log"
    : > "$dir/rabbitmq-env.conf"
    echo '[].' > "$dir/enabled_plugins"
    cat > "$dir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$p
log.console = false
log.file.level = info
disk_free_limit.absolute = 50MB
# a node that lost its peers keeps serving (the tests restart nodes one at
# a time; quorum queues do their own majority handling)
cluster_partition_handling = ignore
EOF
    mapfile -t envarr < <(node_env "$n")
    (cd "$dir" && exec setsid env -i "${envarr[@]}" "$LIBBIN/rabbitmq-server" \
        >> "$dir/stdout.log" 2>&1 < /dev/null) &
    echo $! > "$dir/launcher.pid"
}

wait_node() {
    local n=$1 dir deadline
    dir=$(node_dir "$n")
    deadline=$((SECONDS + TIMEOUT))
    until port_open "$(amqp_port "$n")"; do
        running "$n" || { log "node $n exited during start-up:"; tail -n 20 "$dir/stdout.log" >&2; return 1; }
        [ "$SECONDS" -lt "$deadline" ] || { log "node $n not ready after ${TIMEOUT}s"; return 1; }
        sleep 0.2
    done
    ctl "$n" await_startup --timeout "$TIMEOUT" > /dev/null
}

stop_node() {   # graceful: TERM to the launcher, which forwards it
    local n=$1 dir i pid
    dir=$(node_dir "$n")
    if running "$n"; then
        pid=$(cat "$dir/launcher.pid")
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 600; i++)); do running "$n" || break; sleep 0.05; done
    fi
    kill_node "$n"   # whatever is left
}

kill_node() {   # SIGKILL beam.smp and its launcher (no shutdown at all)
    local n=$1 dir f
    dir=$(node_dir "$n")
    for f in beam.pid launcher.pid; do
        if pid_alive "$dir/$f"; then
            kill -KILL "$(cat "$dir/$f")" 2>/dev/null || true
        fi
    done
    for _ in $(seq 1 100); do
        pid_alive "$dir/beam.pid" || pid_alive "$dir/launcher.pid" || break
        sleep 0.05
    done
}

cmd_up() {
    local n t0=$SECONDS
    if [ -d "$ROOT" ] && running 1; then
        log "cluster on $BASE already running ($ROOT)"
        return 0
    fi
    [ -x "$LIBBIN/rabbitmq-server" ] || die "rabbitmq-server is not installed" \
        "(apt-get install rabbitmq-server, or tools/install.sh)"
    rm -rf "$ROOT"
    mkdir -p "$ROOT/home"
    od -An -tx1 -N20 /dev/urandom | tr -d ' \n' > "$ROOT/home/.erlang.cookie"
    chmod 400 "$ROOT/home/.erlang.cookie"
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in "${NODES[@]}"; do
        wait_node "$n" || { cmd_down; die "node $n did not start"; }
    done
    for n in 2 3; do
        ctl "$n" stop_app > /dev/null
        ctl "$n" join_cluster "$(node_name 1)" > /dev/null \
            || { cmd_down; die "node $n could not join the cluster"; }
        ctl "$n" start_app > /dev/null
    done
    ctl 1 await_online_nodes 3 --timeout "$TIMEOUT" > /dev/null 2>&1 \
        || ctl 1 cluster_status >&2
    log "3-node cluster ready on 127.0.0.1:$BASE-$((BASE + 2)) in $((SECONDS - t0)) s ($ROOT)"
}

cmd_down() {
    local n
    [ -d "$ROOT" ] || { log "no cluster on $BASE"; return 0; }
    for n in "${NODES[@]}"; do stop_node "$n"; done
    if port_open $((BASE + 10000)); then
        ERL_EPMD_PORT=$((BASE + 10000)) epmd -kill > /dev/null 2>&1 || true
    fi
    rm -rf "$ROOT"
    rmdir "$STATE_ROOT" 2> /dev/null || true
    log "cluster on $BASE stopped, $ROOT removed"
}

cmd_status() {
    local rc=0 n
    for n in "${@:-${NODES[@]}}"; do
        check_node "$n"
        if running "$n"; then
            echo "node $n ($(node_name "$n")): running on 127.0.0.1:$(amqp_port "$n")"
        else
            echo "node $n ($(node_name "$n")): not running"
            rc=3
        fi
    done
    return "$rc"
}

cmd_env() {
    local prefix='' hosts='' n
    [ "${1:-}" = --export ] && prefix='export '
    for n in "${NODES[@]}"; do
        hosts+="${hosts:+,}guest:guest@127.0.0.1:$(amqp_port "$n")"
    done
    echo "${prefix}TELEMETER_TEST_RABBIT_CLUSTER_URL=rabbit://$hosts/"
}

main() {
    local cmd=${1:-}
    [ $# -gt 0 ] && shift
    case "$cmd" in
        up) cmd_up ;;
        down) cmd_down ;;
        stop) check_node "${1:-}"; stop_node "$1"; log "node $1 stopped" ;;
        kill) check_node "${1:-}"; kill_node "$1"; log "node $1 killed (SIGKILL)" ;;
        start) check_node "${1:-}"; start_node "$1"; wait_node "$1"; log "node $1 up" ;;
        restart) check_node "${1:-}"; stop_node "$1"; start_node "$1"; wait_node "$1"; log "node $1 restarted" ;;
        status) cmd_status "$@" ;;
        env) cmd_env "$@" ;;
        ctl) check_node "${1:-}"; n=$1; shift; ctl "$n" "$@" ;;
        queues) check_node "${1:-}"; n=$1; shift; tool rabbitmq-queues "$n" "$@" ;;
        *) sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
}

main "$@"
