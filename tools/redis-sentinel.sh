#!/usr/bin/env bash
# tools/redis-sentinel.sh - a throwaway Redis primary + replica watched by
# three Sentinels on loopback, for telemeter's coordination fail-over test
# (issue 15), beside tools/services.sh's single Redis.
#
#   tools/redis-sentinel.sh up            start fresh (server 1 primary,
#                                         server 2 its replica, sentinels
#                                         1..3); wait until the replica is
#                                         in sync and every sentinel names
#                                         server 1, sees the replica and
#                                         the two other sentinels
#   tools/redis-sentinel.sh down          stop everything, delete all state
#   tools/redis-sentinel.sh kill-primary  SIGKILL the server the sentinels
#                                         name primary; print "N HOST:PORT"
#   tools/redis-sentinel.sh kill     N    SIGKILL server N (1 or 2)
#   tools/redis-sentinel.sh start    N    start killed server N again, as a
#                                         replica of the current primary;
#                                         wait until it is in sync and every
#                                         sentinel lists it as a healthy
#                                         replica
#   tools/redis-sentinel.sh primary       print HOST:PORT of the primary that
#                                         at least 2 of the 3 sentinels name
#                                         (exit 1 if no 2 agree)
#   tools/redis-sentinel.sh status        one line per process; exit 0 if
#                                         all five run, else 3
#   tools/redis-sentinel.sh env [--export]
#                                         print TELEMETER_TEST_REDIS_SENTINEL_URL
#                                         (tooz's sentinel URL, 3 sentinels;
#                                         quoted with --export, for eval)
#   tools/redis-sentinel.sh cli      N ARGS...   redis-cli against server N
#   tools/redis-sentinel.sh sentinel K ARGS...   redis-cli against sentinel K
#
# Ports (TELEMETER_REDIS_SENTINEL_PORT=P, default 56500), all on 127.0.0.1:
#   server N     P + N - 1     (56500, 56501)
#   sentinel K   P + 9 + K     (56510, 56511, 56512)
# The sentinels monitor the primary as "telemeter" with settings that make a
# fail-over quick enough for a test: down-after-milliseconds 1000 (a primary
# silent for 1 s is subjectively down), quorum 2 (two sentinels must agree
# before one is elected to fail over), failover-timeout 5000 ms (an
# unfinished fail-over is retried after 2 x 5 s), parallel-syncs 1.
#
# Servers: command-line directives only (/etc/redis is never read), no
# persistence (no RDB snapshots, no AOF), diskless replication without the
# default 5 s delay. Without persistence a restarted server is empty; `start`
# therefore starts it directly as a replica of the primary the sentinels
# name (and refuses while they still name the dead server itself): an empty
# server that came back as a primary before the sentinels noticed would make
# the replica sync its emptiness. Sentinels rewrite their own config file,
# kept in their state dir.
#
# State: ${TELEMETER_SERVICES_DIR:-/tmp/telemeter-services}/
# redis-sentinel-P/{server1,server2,sentinel1,sentinel2,sentinel3}, each
# process in its own session (setsid), its PID recorded in launcher.pid.
# Needs the Debian package redis-server (which brings redis-tools'
# redis-cli). Works as root and as a normal user.
set -euo pipefail
umask 022

BASE=${TELEMETER_REDIS_SENTINEL_PORT:-56500}
STATE_ROOT=${TELEMETER_SERVICES_DIR:-/tmp/telemeter-services}
TIMEOUT=${TELEMETER_SERVICES_TIMEOUT:-90}
MASTER=telemeter
SERVERS=(1 2)
SENTINELS=(1 2 3)
ROOT=$STATE_ROOT/redis-sentinel-$BASE

log() { echo "redis-sentinel.sh: $*" >&2; }
die() { echo "redis-sentinel.sh: ERROR: $*" >&2; exit 1; }

case "$BASE" in ''|*[!0-9]*) die "TELEMETER_REDIS_SENTINEL_PORT is not a number" ;; esac
[ "$BASE" -ge 1024 ] && [ "$BASE" -le 65523 ] \
    || die "TELEMETER_REDIS_SENTINEL_PORT=$BASE must be in 1024..65523"

# port_open, pid_alive
. "$(dirname "${BASH_SOURCE[0]}")/lib/loopback.sh"
server_port() { echo $((BASE + $1 - 1)); }
sentinel_port() { echo $((BASE + 9 + $1)); }
server_dir() { echo "$ROOT/server$1"; }
sentinel_dir() { echo "$ROOT/sentinel$1"; }

check_server() {
    case "${1:-}" in 1|2) ;; *) die "server must be 1 or 2, not '${1:-}'" ;; esac
}
check_sentinel() {
    case "${1:-}" in 1|2|3) ;; *) die "sentinel must be 1, 2 or 3, not '${1:-}'" ;; esac
}

server_running() { pid_alive "$(server_dir "$1")/launcher.pid"; }
sentinel_running() { pid_alive "$(sentinel_dir "$1")/launcher.pid"; }

# redis-cli on port $1; --raw: one value per line, no quoting.
rcli() {
    local port=$1
    shift
    redis-cli -h 127.0.0.1 -p "$port" --raw "$@" 2>/dev/null
}

# Field $2 of INFO's "field:value" lines on port $1 (INFO section $3).
info_field() {
    rcli "$1" INFO "${3:-replication}" | tr -d '\r' \
        | sed -n "s/^$2:\(.*\)$/\1/p"
}

# Field $2 of `SENTINEL MASTER telemeter` on sentinel K=$1 (alternating
# name/value lines with --raw).
sentinel_field() {
    rcli "$(sentinel_port "$1")" SENTINEL MASTER "$MASTER" | tr -d '\r' \
        | awk -v k="$2" 'NR % 2 == 1 { key = $0; next } key == k { print; exit }'
}

# HOST:PORT that sentinel K=$1 names primary (empty when it cannot answer).
sentinel_primary() {
    rcli "$(sentinel_port "$1")" SENTINEL GET-MASTER-ADDR-BY-NAME "$MASTER" \
        | tr -d '\r' | paste -sd: -
}

# HOST:PORT named by at least 2 of the 3 sentinels; fails otherwise.
current_primary() {
    local k
    for k in "${SENTINELS[@]}"; do
        sentinel_primary "$k" || true
    done | grep -v '^$' | sort | uniq -c | sort -rn \
        | awk '$1 >= 2 { print $2; found = 1; exit } END { exit !found }'
}

# Server number (1 or 2) listening on HOST:PORT $1.
server_of() {
    local n
    for n in "${SERVERS[@]}"; do
        [ "$1" = "127.0.0.1:$(server_port "$n")" ] && { echo "$n"; return 0; }
    done
    return 1
}

# Run "$@" every 0.1 s until it succeeds; fail after TIMEOUT s with
# message $1.
wait_for() {
    local what=$1 deadline
    shift
    deadline=$((SECONDS + TIMEOUT))
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || { log "$what: not after ${TIMEOUT}s"; return 1; }
        sleep 0.1
    done
}

start_server() {   # start_server N [PRIMARY_HOST:PORT to replicate]
    local n=$1 of=${2:-} dir p
    local -a replica=()
    dir=$(server_dir "$n")
    p=$(server_port "$n")
    if server_running "$n"; then
        log "server $n already running"
        return 0
    fi
    port_open "$p" && die "127.0.0.1:$p is in use by another program"
    [ -n "$of" ] && replica=(--replicaof "${of%:*}" "${of##*:}")
    rm -rf "$dir"
    mkdir -p "$dir"
    (cd "$dir" && exec setsid redis-server --port "$p" --bind 127.0.0.1 \
        --protected-mode yes --save '' --appendonly no --daemonize no \
        --supervised no --dir "$dir" --logfile "$dir/redis.log" \
        --pidfile "$dir/redis.pid" --databases 16 \
        --repl-diskless-sync yes --repl-diskless-sync-delay 0 \
        "${replica[@]}" > "$dir/stdout.log" 2>&1 < /dev/null) &
    echo $! > "$dir/launcher.pid"
}

server_ready() { server_running "$1" && [ "$(rcli "$(server_port "$1")" PING)" = PONG ]; }

# Server N is a replica whose link to its primary is up (initial sync done).
replica_in_sync() {
    local p
    p=$(server_port "$1")
    [ "$(info_field "$p" role)" = slave ] \
        && [ "$(info_field "$p" master_link_status)" = up ] \
        && [ "$(info_field "$p" master_sync_in_progress)" = 0 ]
}

start_sentinel() {
    local k=$1 dir p
    dir=$(sentinel_dir "$k")
    p=$(sentinel_port "$k")
    if sentinel_running "$k"; then
        log "sentinel $k already running"
        return 0
    fi
    port_open "$p" && die "127.0.0.1:$p is in use by another program"
    mkdir -p "$dir"
    # The sentinel rewrites this file (its id, the peers and replicas it
    # found, the config epoch), so it must stay writable.
    cat > "$dir/sentinel.conf" <<EOF
port $p
bind 127.0.0.1
protected-mode yes
daemonize no
supervised no
dir $dir
logfile $dir/sentinel.log
pidfile $dir/sentinel.pid
sentinel monitor $MASTER 127.0.0.1 $(server_port 1) 2
sentinel down-after-milliseconds $MASTER 1000
sentinel failover-timeout $MASTER 5000
sentinel parallel-syncs $MASTER 1
EOF
    (cd "$dir" && exec setsid redis-server "$dir/sentinel.conf" --sentinel \
        > "$dir/stdout.log" 2>&1 < /dev/null) &
    echo $! > "$dir/launcher.pid"
}

# Sentinel K names $2 primary, knows 1 replica and the 2 other sentinels.
sentinel_settled() {
    local k=$1
    sentinel_running "$k" \
        && [ "$(sentinel_primary "$k")" = "$2" ] \
        && [ "$(sentinel_field "$k" num-slaves)" = 1 ] \
        && [ "$(sentinel_field "$k" num-other-sentinels)" = 2 ]
}

stop_pidfile() {   # stop_pidfile FILE SIGNAL: signal, wait up to 5 s, KILL
    local f=$1 sig=$2 i
    pid_alive "$f" || return 0
    kill -"$sig" "$(cat "$f")" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do pid_alive "$f" || return 0; sleep 0.05; done
    kill -KILL "$(cat "$f")" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do pid_alive "$f" || return 0; sleep 0.05; done
    log "warning: pid $(cat "$f") ($f) does not exit"
}

kill_server() { stop_pidfile "$(server_dir "$1")/launcher.pid" KILL; }

cmd_up() {
    local n k t0=$SECONDS primary
    if [ -d "$ROOT" ] && server_running 1; then
        log "sentinel setup on $BASE already running ($ROOT)"
        return 0
    fi
    command -v redis-server > /dev/null 2>&1 && command -v redis-cli > /dev/null 2>&1 \
        || die "redis-server and redis-cli are not installed" \
               "(apt-get install redis-server, or tools/install.sh)"
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    primary=127.0.0.1:$(server_port 1)
    start_server 1
    wait_for "server 1 answering PING" server_ready 1 \
        || { cmd_down; die "server 1 did not start (see $(server_dir 1))"; }
    start_server 2 "$primary"
    wait_for "server 2 in sync with server 1" replica_in_sync 2 \
        || { tail -n 20 "$(server_dir 2)/redis.log" >&2; cmd_down; die "server 2 did not sync"; }
    # After the replica: a sentinel's first INFO of the primary lists it at
    # once (otherwise the next INFO comes 10 s later).
    for k in "${SENTINELS[@]}"; do start_sentinel "$k"; done
    for k in "${SENTINELS[@]}"; do
        wait_for "sentinel $k settled" sentinel_settled "$k" "$primary" \
            || { tail -n 20 "$(sentinel_dir "$k")/sentinel.log" >&2; cmd_down; die "sentinel $k did not settle"; }
    done
    log "primary $primary, replica 127.0.0.1:$(server_port 2), sentinels" \
        "127.0.0.1:$(sentinel_port 1)-$(sentinel_port 3) ready in $((SECONDS - t0)) s ($ROOT)"
}

cmd_down() {
    local n k
    [ -d "$ROOT" ] || { log "no sentinel setup on $BASE"; return 0; }
    for k in "${SENTINELS[@]}"; do stop_pidfile "$(sentinel_dir "$k")/launcher.pid" TERM; done
    for n in "${SERVERS[@]}"; do stop_pidfile "$(server_dir "$n")/launcher.pid" TERM; done
    rm -rf "$ROOT"
    rmdir "$STATE_ROOT" 2> /dev/null || true
    log "sentinel setup on $BASE stopped, $ROOT removed"
}

cmd_kill_primary() {
    local addr n
    addr=$(current_primary) || die "the sentinels do not agree on a primary"
    n=$(server_of "$addr") || die "the sentinels name $addr, not one of our servers"
    server_running "$n" || die "primary $addr (server $n) is not running"
    kill_server "$n"
    log "server $n ($addr, the primary) killed (SIGKILL)"
    echo "$n $addr"
}

# The sentinels name a primary other than server $1, and it runs.
failed_over_from() {
    local addr n
    addr=$(current_primary) || return 1
    n=$(server_of "$addr") || return 1
    [ "$n" != "$1" ] && server_ready "$n"
}

# Every sentinel lists server $1 as a replica that is not down (so that
# it can be promoted by the next fail-over).
sentinels_see_replica() {
    local k addr
    addr=127.0.0.1:$(server_port "$1")
    for k in "${SENTINELS[@]}"; do
        rcli "$(sentinel_port "$k")" SENTINEL REPLICAS "$MASTER" | tr -d '\r' \
            | awk -v a="$addr" 'NR % 2 == 1 { key = $0; next }
                  key == "name" { name = $0 }
                  key == "flags" && name == a && $0 == "slave" { ok = 1 }
                  END { exit !ok }' || return 1
    done
}

cmd_start() {
    local n=$1 addr
    if server_running "$n"; then
        log "server $n already running"
        return 0
    fi
    [ -d "$ROOT" ] || die "no state in $ROOT: run '$0 up' first"
    # Coming back empty while still the sentinels' primary would wipe the
    # other server at its next sync: wait for the fail-over first.
    wait_for "fail-over away from server $n" failed_over_from "$n" \
        || die "the sentinels still name server $n primary (or no server runs)"
    addr=$(current_primary)
    start_server "$n" "$addr"
    wait_for "server $n in sync with $addr" replica_in_sync "$n" \
        || { tail -n 20 "$(server_dir "$n")/redis.log" >&2; die "server $n did not sync"; }
    wait_for "sentinels listing server $n as a healthy replica" sentinels_see_replica "$n" \
        || die "the sentinels do not list server $n as a replica"
    log "server $n up, replica of $addr"
}

cmd_status() {
    local rc=0 n k
    for n in "${SERVERS[@]}"; do
        if server_running "$n"; then
            echo "server $n: running on 127.0.0.1:$(server_port "$n")" \
                "($(info_field "$(server_port "$n")" role))"
        else
            echo "server $n: not running"; rc=3
        fi
    done
    for k in "${SENTINELS[@]}"; do
        if sentinel_running "$k"; then
            echo "sentinel $k: running on 127.0.0.1:$(sentinel_port "$k")" \
                "(primary $(sentinel_primary "$k"))"
        else
            echo "sentinel $k: not running"; rc=3
        fi
    done
    return "$rc"
}

cmd_env() {
    local url
    url="redis://127.0.0.1:$(sentinel_port 1)?sentinel=$MASTER"
    url+="&sentinel_fallback=127.0.0.1:$(sentinel_port 2)"
    url+="&sentinel_fallback=127.0.0.1:$(sentinel_port 3)"
    # --export is for eval, where the URL's '&' would start a background job
    if [ "${1:-}" = --export ]; then
        echo "export TELEMETER_TEST_REDIS_SENTINEL_URL='$url'"
    else
        echo "TELEMETER_TEST_REDIS_SENTINEL_URL=$url"
    fi
}

main() {
    local cmd=${1:-} n
    [ $# -gt 0 ] && shift
    case "$cmd" in
        up) cmd_up ;;
        down) cmd_down ;;
        kill-primary) cmd_kill_primary ;;
        kill) check_server "${1:-}"; kill_server "$1"; log "server $1 killed (SIGKILL)" ;;
        start) check_server "${1:-}"; cmd_start "$1" ;;
        primary) current_primary || die "the sentinels do not agree on a primary" ;;
        status) cmd_status ;;
        env) cmd_env "$@" ;;
        cli) check_server "${1:-}"; n=$1; shift; rcli "$(server_port "$n")" "$@" ;;
        sentinel) check_sentinel "${1:-}"; n=$1; shift; rcli "$(sentinel_port "$n")" "$@" ;;
        *) awk 'NR > 1 && !/^#/ { exit } NR > 1' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
}

main "$@"
