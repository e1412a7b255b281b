#!/usr/bin/env bash
# tools/services.sh - throwaway servers for telemeter's functional tests.
#
#   tools/services.sh up      [SERVICE...]  start fresh (no old data), wait
#                                           until ready; no-op if running
#   tools/services.sh down    [SERVICE...]  stop and delete all state (no
#                                           SERVICE: the four and snmpd)
#   tools/services.sh stop    [--keep] [SERVICE...]
#                                           stop, KEEP the data dir (--keep
#                                           is the default, accepted for
#                                           clarity)
#   tools/services.sh start   [SERVICE...]  start reusing kept data, if any
#   tools/services.sh restart [SERVICE...]  stop + start, data kept (e.g. a
#                                           broker outage with queues kept)
#   tools/services.sh status  [SERVICE...]  exit 0 if all are running, else 3
#   tools/services.sh env [--export] [SERVICE...]
#                                           print TELEMETER_TEST_*_URL=...
#   tools/services.sh rabbitmqctl ARGS...   rabbitmqctl against our broker
#
# SERVICE: rabbitmq postgresql mariadb redis (default: all four), snmpd,
#          mongodb and gnocchi (only when named; tools/gnocchi/service.sh).
#
# Every server listens on 127.0.0.1 only, on a non-default port, keeps all
# its files in ${TELEMETER_SERVICES_DIR:-/tmp/telemeter-services}/<svc>-<port>
# and runs in its own session (setsid) with its PID recorded; `down` stops
# it by that PID and removes the directory, leaving no process behind.
#
# Ports (environment):
#   TELEMETER_RABBIT_PORT 5673   (also uses PORT+10000 epmd, PORT+20000
#                                 Erlang distribution, PORT+30000..30010
#                                 rabbitmqctl; so PORT <= 35525)
#   TELEMETER_PG_PORT     55432
#   TELEMETER_MYSQL_PORT  53306
#   TELEMETER_REDIS_PORT  56379
#   TELEMETER_SNMPD_PORT  16161 (UDP; community telemeter-ro, read-only)
#   TELEMETER_MONGODB_PORT 27117 (nx-27017, a MongoDB wire-protocol stand-in)
#   TELEMETER_GNOCCHI_PORT 8141  (its own PostgreSQL on PORT+1)
# Other knobs: TELEMETER_SERVICES_TIMEOUT (s, default 90) for start-up,
#   TELEMETER_PG_BIN (default: newest /usr/lib/postgresql/*/bin).
#
# Needs the Debian packages rabbitmq-server, postgresql-15, mariadb-server
# and redis-server: run tools/install.sh.  Works as root (the databases then
# run as the 'postgres' / 'mysql' users) and as a normal user.
#
# Measured on the 2-core Debian 12 dev machine, shared with other test runs
# (load average 1-5), so read these as upper bounds:
#   up, one at a time:  rabbitmq 7.1-10.3 s (the shared recipe measured
#     5.2-6.1 s on an idle box and 7.6 s next to ours), postgresql 0.75-1.0 s
#     (initdb + start), mariadb 0.96-1.08 s (install-db + start), redis
#     0.12-0.14 s
#   up, all four at once:  6.8-7.0 s wall (14 s once under heavy load)
#   down:  rabbitmq 1.2-1.4 s, postgresql 0.09-0.23 s, mariadb 0.12-0.83 s,
#     redis 0.07-0.20 s; all four 1.6-2.6 s
#   restart rabbitmq (data kept): 7.5-8.8 s; one rabbitmqctl call ~0.9 s
set -euo pipefail

# Data directories must be traversable by the postgres/mysql users even if
# the caller runs with a strict umask.
umask 022

ALL_SERVICES=(rabbitmq postgresql mariadb redis)
STATE_ROOT=${TELEMETER_SERVICES_DIR:-/tmp/telemeter-services}
TIMEOUT=${TELEMETER_SERVICES_TIMEOUT:-90}
RABBIT_LIBBIN=/usr/lib/rabbitmq/bin

# ---------------------------------------------------------------- helpers

# Messages go to stderr so that `env` output on stdout stays machine-readable.
log() { echo "services.sh: $*" >&2; }
die() { echo "services.sh: ERROR: $*" >&2; exit 1; }

now_ns() { date +%s%N; }
since() {   # seconds since the ns timestamp $1, one decimal
    awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}

is_root() { [ "$(id -u)" = 0 ]; }

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True if process $1 runs (a zombie waiting for PID 1 to reap it does not
# count: that can take ~2 s here) and, when readable, its working directory
# is under $2 - every server we start runs inside its state dir, so a PID
# reused by an unrelated process is not mistaken for ours.
proc_alive() {
    local pid=$1 dir=$2 state cwd
    kill -0 "$pid" 2>/dev/null || return 1
    state=$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$pid/stat" 2>/dev/null) \
        || return 1
    [ "$state" != Z ] || return 1
    if cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) && [ -n "$cwd" ]; then
        case "$cwd" in
            "$dir"|"$dir"/*) return 0 ;;
            *) return 1 ;;
        esac
    fi
}

# True if the PID stored in file $1 is a live server of ours.
pid_alive() {
    local pid
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && proc_alive "$pid" "$(dirname "$1")"
}

# Run "$@" as user $1 when we are root, else as ourselves.
as_user() {
    local user=$1
    shift
    if is_root; then
        setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
    else
        "$@"
    fi
}

port_of() {
    local p
    case "$1" in
        rabbitmq) p=${TELEMETER_RABBIT_PORT:-5673} ;;
        postgresql) p=${TELEMETER_PG_PORT:-55432} ;;
        mariadb) p=${TELEMETER_MYSQL_PORT:-53306} ;;
        redis) p=${TELEMETER_REDIS_PORT:-56379} ;;
        snmpd) p=${TELEMETER_SNMPD_PORT:-16161} ;;
        mongodb) p=${TELEMETER_MONGODB_PORT:-27117} ;;
        gnocchi) p=${TELEMETER_GNOCCHI_PORT:-8141} ;;
    esac
    case "$p" in
        ''|*[!0-9]*) die "port for $1 is not a number: '$p'" ;;
    esac
    if [ "$1" = rabbitmq ] && [ "$p" -gt 35525 ]; then
        die "TELEMETER_RABBIT_PORT=$p is too high: it must be <= 35525" \
            "because rabbitmqctl uses PORT+30000..PORT+30010"
    fi
    if [ "$p" -lt 1024 ] || [ "$p" -gt 65535 ]; then
        die "port $p for $1 is outside 1024..65535"
    fi
    echo "$p"
}

dir_of() { echo "$STATE_ROOT/$1-$(port_of "$1")"; }

url_of() {
    local p
    p=$(port_of "$1")
    case "$1" in
        rabbitmq) echo "TELEMETER_TEST_RABBIT_URL=rabbit://guest:guest@127.0.0.1:$p/" ;;
        postgresql) echo "TELEMETER_TEST_POSTGRESQL_URL=postgresql+psycopg://postgres@127.0.0.1:$p/postgres" ;;
        mariadb) echo "TELEMETER_TEST_MYSQL_URL=mysql+pymysql://root@127.0.0.1:$p/test" ;;
        redis) echo "TELEMETER_TEST_REDIS_URL=redis://127.0.0.1:$p" ;;
        snmpd) echo "TELEMETER_TEST_SNMPD_URL=snmp://$SNMPD_COMMUNITY@127.0.0.1:$p" ;;
        mongodb) echo "TELEMETER_TEST_MONGODB_URL=mongodb://127.0.0.1:$p/telemeter" ;;
        gnocchi) echo "TELEMETER_TEST_GNOCCHI_URL=http://127.0.0.1:$p" ;;
    esac
}

# Send signal $2 to the PID in file $1 and wait up to $3 s for it to exit;
# SIGKILL after that.  Returns 0 once the process is gone.
stop_pid() {
    local pidfile=$1 sig=$2 wait_s=$3 pid dir i
    pid_alive "$pidfile" || return 0
    pid=$(cat "$pidfile")
    dir=$(dirname "$pidfile")
    kill -"$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 20; i++)); do
        proc_alive "$pid" "$dir" || return 0
        sleep 0.05
    done
    log "pid $pid did not exit within ${wait_s}s after SIG$sig; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
}

# Wait (up to TIMEOUT) until command "$@" succeeds while the server whose
# PID file is $1 stays alive.  $2 names the service for messages.
wait_until() {
    local pidfile=$1 svc=$2 deadline
    shift 2
    deadline=$((SECONDS + TIMEOUT))
    until "$@"; do
        if ! pid_alive "$pidfile"; then
            log "$svc exited during start-up"
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$svc not ready after ${TIMEOUT}s (TELEMETER_SERVICES_TIMEOUT)"
            return 1
        fi
        sleep 0.1
    done
}

# --------------------------------------------------------------- rabbitmq
# Run the broker from /usr/lib/rabbitmq/bin: the /usr/sbin wrappers `su
# rabbitmq` and use /var/lib/rabbitmq's cookie, which breaks rabbitmqctl.
# Everything that Erlang would bind on 0.0.0.0 by default (distribution
# port, rabbitmqctl's own listener) is pinned to 127.0.0.1, and each broker
# gets a private epmd so that two brokers (two test sessions) never share one.

rabbitmq_installed() {
    [ -x "$RABBIT_LIBBIN/rabbitmq-server" ] \
        || { log "rabbitmq-server is not installed: run tools/install.sh" \
                 "(or apt-get install rabbitmq-server)"; return 1; }
}

rabbitmq_node() { echo "telemeter-$(port_of rabbitmq)@localhost"; }

# The whole environment of the broker and of rabbitmqctl, one VAR=value per
# line; used with `env -i` so nothing from the caller's environment leaks in.
rabbitmq_env() {
    local p dir
    p=$(port_of rabbitmq)
    dir=$(dir_of rabbitmq)
    cat <<EOF
PATH=/usr/sbin:/usr/bin:/sbin:/bin
LANG=C.UTF-8
HOME=$dir/home
RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
RABBITMQ_NODENAME=$(rabbitmq_node)
RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
RABBITMQ_NODE_PORT=$p
RABBITMQ_DIST_PORT=$((p + 20000))
RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
RABBITMQ_MNESIA_BASE=$dir/mnesia
RABBITMQ_LOG_BASE=$dir/log
RABBITMQ_PID_FILE=$dir/beam.pid
ERL_EPMD_ADDRESS=127.0.0.1
ERL_EPMD_PORT=$((p + 10000))
RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}
RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}
RABBITMQ_CTL_DIST_PORT_MIN=$((p + 30000))
RABBITMQ_CTL_DIST_PORT_MAX=$((p + 30010))
EOF
}

rabbitmq_ctl() {
    local dir
    local -a envarr
    dir=$(dir_of rabbitmq)
    [ -d "$dir/home" ] || die "no rabbitmq state in $dir: run" \
        "tools/services.sh up rabbitmq first"
    # A CLI call while the broker is down would start an epmd of its own
    # (and leave it running): refuse instead.
    rabbitmq_running || die "rabbitmq on port $(port_of rabbitmq) is not" \
        "running: tools/services.sh start rabbitmq"
    mapfile -t envarr < <(rabbitmq_env)
    (cd "$dir" && env -i "${envarr[@]}" "$RABBIT_LIBBIN/rabbitmqctl" \
        -n "$(rabbitmq_node)" "$@")
}

rabbitmq_running() { pid_alive "$(dir_of rabbitmq)/launcher.pid"; }

rabbitmq_start() {   # $1 = 1 to reuse kept data
    local p dir
    local -a envarr
    p=$(port_of rabbitmq)
    dir=$(dir_of rabbitmq)
    mkdir -p "$dir/mnesia" "$dir/log" "$dir/home"
    if [ ! -f "$dir/home/.erlang.cookie" ]; then
        # server and rabbitmqctl share HOME, hence this cookie
        od -An -tx1 -N20 /dev/urandom | tr -d ' \n' > "$dir/home/.erlang.cookie"
        chmod 400 "$dir/home/.erlang.cookie"
    fi
    : > "$dir/rabbitmq-env.conf"        # do not read /etc/rabbitmq's
    echo '[].' > "$dir/enabled_plugins" # no plugins: faster boot
    cat > "$dir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$p
log.console = false
log.file.level = info
# a CI box with little free disk must not block publishers
disk_free_limit.absolute = 50MB
EOF
    mapfile -t envarr < <(rabbitmq_env)
    # The launcher is a shell script that traps TERM and forwards it to
    # beam.smp, so its PID is the one to signal for a graceful stop.
    (cd "$dir" && exec setsid env -i "${envarr[@]}" \
        "$RABBIT_LIBBIN/rabbitmq-server" > "$dir/stdout.log" 2>&1 < /dev/null) &
    echo $! > "$dir/launcher.pid"
}

rabbitmq_wait() {
    local p dir
    p=$(port_of rabbitmq)
    dir=$(dir_of rabbitmq)
    # The AMQP listener opens in the last boot step (~5 s here); await_startup
    # then confirms the app is fully up (~0.4 s, it boots an Erlang VM).
    wait_until "$dir/launcher.pid" rabbitmq port_open "$p" || return 1
    rabbitmq_ctl await_startup --timeout "$TIMEOUT" > /dev/null
}

rabbitmq_stop() {
    local p dir
    p=$(port_of rabbitmq)
    dir=$(dir_of rabbitmq)
    stop_pid "$dir/launcher.pid" TERM 30
    # If the launcher had to be killed, beam.smp may still run on its own.
    stop_pid "$dir/beam.pid" KILL 5
    # epmd is daemonised by erl and outlives the broker; it accepts -kill
    # once no node is registered with it any more.
    if port_open $((p + 10000)); then
        ERL_EPMD_PORT=$((p + 10000)) epmd -kill > /dev/null 2>&1 || true
        sleep 0.1
        if port_open $((p + 10000)); then
            log "warning: epmd on 127.0.0.1:$((p + 10000)) is still running"
        fi
    fi
}

rabbitmq_log() { tail -n 30 "$(dir_of rabbitmq)/stdout.log" "$(dir_of rabbitmq)"/log/*.log 2>/dev/null || true; }

# ------------------------------------------------------------- postgresql
# initdb/postgres refuse to run as root: as root they run as the Debian
# 'postgres' user.  The postmaster runs in the foreground of our background
# job (no pg_ctl) so that launcher.pid is the postmaster itself.

pg_bindir() {
    if [ -n "${TELEMETER_PG_BIN:-}" ]; then
        echo "$TELEMETER_PG_BIN"
        return
    fi
    find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d \
        2>/dev/null | sort -V | tail -n 1
}

postgresql_installed() {
    local bin
    bin=$(pg_bindir)
    if [ -z "$bin" ] || [ ! -x "$bin/postgres" ] || [ ! -x "$bin/initdb" ]; then
        log "postgresql-15 is not installed (no /usr/lib/postgresql/*/bin/postgres):" \
            "run tools/install.sh (or apt-get install postgresql-15)"
        return 1
    fi
    if is_root && ! id postgres > /dev/null 2>&1; then
        log "user 'postgres' does not exist: reinstall postgresql-15"
        return 1
    fi
}

postgresql_running() { pid_alive "$(dir_of postgresql)/launcher.pid"; }

postgresql_start() {   # $1 = 1 to reuse kept data
    local p dir bin
    local -a drop=()
    p=$(port_of postgresql)
    dir=$(dir_of postgresql)
    bin=$(pg_bindir)
    # setpriv execs in place, so $! below is the postmaster's PID
    is_root && drop=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    mkdir -p "$dir/sock"
    is_root && chown -R postgres:postgres "$dir"
    if [ "$1" != 1 ] || [ ! -f "$dir/data/PG_VERSION" ]; then
        rm -rf "$dir/data"
        # --no-sync saves ~1 s; trust auth: passwordless 'postgres' superuser
        if ! (cd "$dir" && as_user postgres "$bin/initdb" -D "$dir/data" \
                -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
                > "$dir/initdb.log" 2>&1); then
            log "initdb failed:"
            cat "$dir/initdb.log" >&2
            return 1
        fi
    fi
    # Durability is off on purpose: a test server, made fast.
    (cd "$dir" && exec setsid "${drop[@]}" "$bin/postgres" \
        -D "$dir/data" -p "$p" -c listen_addresses=127.0.0.1 \
        -c unix_socket_directories="$dir/sock" -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=200 -c shared_buffers=128MB \
        > "$dir/server.log" 2>&1 < /dev/null) &
    echo $! > "$dir/launcher.pid"
}

postgresql_ready() {
    "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$(port_of postgresql)"
}

postgresql_wait() {
    wait_until "$(dir_of postgresql)/launcher.pid" postgresql postgresql_ready
}

postgresql_stop() {
    # SIGINT = "fast" shutdown: abort sessions, checkpoint, exit (~0.2 s)
    stop_pid "$(dir_of postgresql)/launcher.pid" INT 30
}

postgresql_log() { tail -n 30 "$(dir_of postgresql)/server.log" 2>/dev/null || true; }

# ---------------------------------------------------------------- mariadb
# --no-defaults everywhere: the packaged /etc/mysql config points at
# /var/lib/mysql and /run/mysqld.  As root, --user=mysql makes mariadbd drop
# privileges itself.

mariadb_user() { if is_root; then echo mysql; else id -un; fi; }

mariadb_installed() {
    local b
    for b in mariadbd mariadb-install-db mariadb-admin mariadb; do
        command -v "$b" > /dev/null 2>&1 && continue
        [ -x "/usr/sbin/$b" ] && continue
        log "$b not found: mariadb-server is not installed: run" \
            "tools/install.sh (or apt-get install mariadb-server)"
        return 1
    done
}

mariadb_bin() {   # mariadbd lives in /usr/sbin, which a non-root PATH lacks
    command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"
}

mariadb_running() { pid_alive "$(dir_of mariadb)/launcher.pid"; }

mariadb_start() {   # $1 = 1 to reuse kept data
    local p dir u
    p=$(port_of mariadb)
    dir=$(dir_of mariadb)
    u=$(mariadb_user)
    mkdir -p "$dir/data" "$dir/tmp"
    if [ "$1" != 1 ] || [ ! -f "$dir/initialized" ]; then
        rm -rf "$dir/data" "$dir/initialized"
        mkdir -p "$dir/data"
        is_root && chown -R mysql:mysql "$dir"
        # root@localhost keeps unix_socket auth; mariadb_wait adds a
        # passwordless root@127.0.0.1 for the tests.
        if ! "$(mariadb_bin mariadb-install-db)" --no-defaults \
                --datadir="$dir/data" --user="$u" \
                --auth-root-authentication-method=socket --skip-test-db \
                --skip-name-resolve > "$dir/install.log" 2>&1; then
            log "mariadb-install-db failed:"
            cat "$dir/install.log" >&2
            return 1
        fi
    fi
    is_root && chown -R mysql:mysql "$dir"
    (cd "$dir" && exec setsid "$(mariadb_bin mariadbd)" --no-defaults --datadir="$dir/data" \
        --user="$u" --port="$p" --bind-address=127.0.0.1 \
        --socket="$dir/mysqld.sock" --pid-file="$dir/mysqld.pid" \
        --log-error="$dir/error.log" --tmpdir="$dir/tmp" \
        --skip-name-resolve --skip-log-bin \
        --innodb-buffer-pool-size=128M --innodb-log-file-size=48M \
        --innodb-flush-log-at-trx-commit=2 --innodb-doublewrite=0 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --max-allowed-packet=64M --max-connections=200 \
        > "$dir/stdout.log" 2>&1 < /dev/null) &
    echo $! > "$dir/launcher.pid"
}

mariadb_ready() {
    "$(mariadb_bin mariadb-admin)" --no-defaults \
        --socket="$(dir_of mariadb)/mysqld.sock" -uroot ping > /dev/null 2>&1
}

mariadb_wait() {
    local dir
    dir=$(dir_of mariadb)
    wait_until "$dir/launcher.pid" mariadb mariadb_ready || return 1
    # The socket answers before TCP is guaranteed; also make sure the test
    # account and database exist (idempotent, so fine after a restart).
    "$(mariadb_bin mariadb)" --no-defaults --socket="$dir/mysqld.sock" -uroot -e "
        CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
        GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
        CREATE DATABASE IF NOT EXISTS test;" || return 1
    wait_until "$dir/launcher.pid" mariadb port_open "$(port_of mariadb)" \
        || return 1
    touch "$dir/initialized"
}

mariadb_stop() {
    local dir
    dir=$(dir_of mariadb)
    # mariadbd shuts down cleanly on SIGTERM (same as mariadb-admin shutdown)
    stop_pid "$dir/launcher.pid" TERM 60
}

mariadb_log() { tail -n 30 "$(dir_of mariadb)/error.log" 2>/dev/null || true; }

# ------------------------------------------------------------------ redis
# No persistence (no RDB snapshots, no AOF): a restart starts empty.

redis_installed() {
    command -v redis-server > /dev/null 2>&1 \
        || { log "redis-server is not installed: run tools/install.sh" \
                 "(or apt-get install redis-server)"; return 1; }
}

redis_running() { pid_alive "$(dir_of redis)/launcher.pid"; }

redis_start() {   # $1 is ignored: there is no data to keep
    local p dir
    p=$(port_of redis)
    dir=$(dir_of redis)
    mkdir -p "$dir"
    # Command-line directives only: /etc/redis/redis.conf is never read.
    (cd "$dir" && exec setsid redis-server --port "$p" --bind 127.0.0.1 \
        --protected-mode yes --save '' --appendonly no --daemonize no \
        --supervised no --dir "$dir" --logfile "$dir/redis.log" \
        --pidfile "$dir/redis.pid" --databases 16 \
        > "$dir/stdout.log" 2>&1 < /dev/null) &
    echo $! > "$dir/launcher.pid"
}

# PING over RESP with bash's /dev/tcp: no dependency on redis-cli.  In a
# subshell: a failed `exec` redirection would end the whole script.
redis_ping() {
    local port
    port=$(port_of redis)
    (
        exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
        printf 'PING\r\n' >&3
        reply=
        read -r -t 2 reply <&3 || true
        [ "${reply%$'\r'}" = "+PONG" ]
    ) 2>/dev/null
}

redis_wait() {
    wait_until "$(dir_of redis)/launcher.pid" redis redis_ping
}

redis_stop() {
    stop_pid "$(dir_of redis)/launcher.pid" TERM 15
}

redis_log() { tail -n 30 "$(dir_of redis)/redis.log" 2>/dev/null || true; }

# ------------------------------------------------------------------ snmpd
# net-snmp agent for the SNMP hardware pollsters: UDP on 127.0.0.1 only, a
# read-only v2c community accepted from loopback only, no AgentX master and
# no SMUX (-I -smux: SMUX would listen on TCP 0.0.0.0:199 whatever
# agentAddress says), -C so /etc/snmp/snmpd.conf is never read, and
# SNMP_PERSISTENT_DIR in the state dir instead of /var/lib/snmp.  Not part
# of the default set: start it with `tools/services.sh up snmpd`.
# Query by numeric OID (Debian main has no HOST-RESOURCES/IF-MIB files).

SNMPD_COMMUNITY=telemeter-ro

snmpd_installed() {
    [ -x /usr/sbin/snmpd ] && command -v snmpget > /dev/null 2>&1 \
        || { log "snmpd/snmp are not installed: run tools/install.sh" \
                 "(or apt-get install snmpd snmp)"; return 1; }
}

snmpd_running() { pid_alive "$(dir_of snmpd)/launcher.pid"; }

snmpd_start() {   # $1 is ignored: the agent keeps no data worth keeping
    local p dir
    p=$(port_of snmpd)
    dir=$(dir_of snmpd)
    mkdir -p "$dir/persist"
    cat > "$dir/snmpd.conf" <<EOF
agentAddress udp:127.0.0.1:$p
rocommunity $SNMPD_COMMUNITY 127.0.0.1
sysLocation telemeter functional tests
sysContact root@localhost
master no
includeAllDisks 10%
dontLogTCPWrappersConnects yes
EOF
    (cd "$dir" && SNMP_PERSISTENT_DIR="$dir/persist" MIBS=: exec setsid \
        /usr/sbin/snmpd -f -C -I -smux -c "$dir/snmpd.conf" \
        -Lf "$dir/snmpd.log" -p "$dir/snmpd.pid" \
        > "$dir/stdout.log" 2>&1 < /dev/null) &
    echo $! > "$dir/launcher.pid"
}

snmpd_ready() {
    # sysUpTime.0 answers as soon as the agent serves requests
    snmpget -v2c -c "$SNMPD_COMMUNITY" -On -t 0.3 -r 0 \
        "127.0.0.1:$(port_of snmpd)" 1.3.6.1.2.1.1.3.0 > /dev/null 2>&1
}

snmpd_wait() {
    wait_until "$(dir_of snmpd)/launcher.pid" snmpd snmpd_ready
}

snmpd_stop() {
    stop_pid "$(dir_of snmpd)/launcher.pid" TERM 10
}

snmpd_log() { tail -n 30 "$(dir_of snmpd)/snmpd.log" "$(dir_of snmpd)/stdout.log" 2>/dev/null || true; }

# ---------------------------------------------------------------- mongodb
# No MongoDB server is installable on Debian 12: nx-27017 (PyPI, in the
# venv through the [test] extra) speaks the MongoDB wire protocol and
# stores in SQLite.  It serves CRUD, upserts, indexes and TTL faithfully
# but not every aggregation (see the storage tests).  Not part of the
# default set: `tools/services.sh up mongodb`.  Measured here: ready in
# 0.2-0.4 s, stops on SIGTERM in ~2 s.

# Resolved at load time, while the caller's working directory holds.
MONGODB_VENV_BIN="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv/bin/nx-27017"

mongodb_bin() {
    local venv_bin=$MONGODB_VENV_BIN
    if [ -n "${TELEMETER_NX_BIN:-}" ]; then
        echo "$TELEMETER_NX_BIN"
    elif [ -x "$venv_bin" ]; then
        echo "$venv_bin"
    else
        command -v nx-27017 2>/dev/null || echo "$venv_bin"
    fi
}

mongodb_installed() {
    [ -x "$(mongodb_bin)" ] \
        || { log "nx-27017 is not installed: run tools/install.sh (pip" \
                 "install -e '.[test]') or set TELEMETER_NX_BIN"; return 1; }
}

mongodb_running() { pid_alive "$(dir_of mongodb)/launcher.pid"; }

mongodb_start() {   # $1 = 1 to reuse kept data
    local p dir
    p=$(port_of mongodb)
    dir=$(dir_of mongodb)
    mkdir -p "$dir"
    [ "$1" = 1 ] || rm -f "$dir"/nx.db*
    (cd "$dir" && exec setsid "$(mongodb_bin)" --host 127.0.0.1 -p "$p" \
        --db "$dir/nx.db" --log-file "$dir/nx.log" \
        --pid-file "$dir/nx.pid" > "$dir/stdout.log" 2>&1 < /dev/null) &
    echo $! > "$dir/launcher.pid"
}

mongodb_wait() {
    wait_until "$(dir_of mongodb)/launcher.pid" mongodb port_open \
        "$(port_of mongodb)"
}

mongodb_stop() {
    stop_pid "$(dir_of mongodb)/launcher.pid" TERM 10
}

mongodb_log() { tail -n 30 "$(dir_of mongodb)/nx.log" "$(dir_of mongodb)/stdout.log" 2>/dev/null || true; }

# ---------------------------------------------------------------- gnocchi
# shellcheck source=tools/gnocchi/service.sh
. "$(dirname "${BASH_SOURCE[0]}")/gnocchi/service.sh"

# ---------------------------------------------------------------- generic

# Start the services in $@ (the first argument is 1 to reuse kept data, 0
# for a fresh start), all at once, then wait for each.  Returns non-zero if
# any failed; a failed service is stopped and its directory removed (after
# its log is shown), so a failure leaves nothing running.
start_services() {
    local keep=$1 svc rc=0 dir p
    shift
    local -a started=()
    local -A t0=()
    for svc in "$@"; do
        dir=$(dir_of "$svc")
        p=$(port_of "$svc")
        if "${svc}_running"; then
            log "$svc already running on 127.0.0.1:$p ($dir)"
            continue
        fi
        "${svc}_installed" || { rc=1; continue; }
        if port_open "$p"; then
            log "port 127.0.0.1:$p is already in use by another program, not" \
                "a telemeter $svc: stop it or choose another port with" \
                "TELEMETER_$(port_var "$svc")=..."
            rc=1
            continue
        fi
        if [ "$keep" != 1 ]; then
            rm -rf "$dir"
        fi
        mkdir -p "$dir"
        t0[$svc]=$(now_ns)
        if ! "${svc}_start" "$keep"; then
            fail_service "$svc"
            rc=1
            continue
        fi
        started+=("$svc")
    done
    # The broker boots in the background for ~5 s: wait for it last, so the
    # other servers' readiness (and timings) are not queued behind it.
    local -a order=()
    for svc in "${started[@]}"; do
        [ "$svc" = rabbitmq ] || order+=("$svc")
    done
    for svc in "${started[@]}"; do
        [ "$svc" != rabbitmq ] || order+=("$svc")
    done
    for svc in "${order[@]}"; do
        if "${svc}_wait"; then
            log "$svc ready on 127.0.0.1:$(port_of "$svc") in" \
                "$(since "${t0[$svc]}") s ($(dir_of "$svc"))"
        else
            fail_service "$svc"
            rc=1
        fi
    done
    return "$rc"
}

port_var() {
    case "$1" in
        rabbitmq) echo RABBIT_PORT ;;
        postgresql) echo PG_PORT ;;
        mariadb) echo MYSQL_PORT ;;
        redis) echo REDIS_PORT ;;
        snmpd) echo SNMPD_PORT ;;
        mongodb) echo MONGODB_PORT ;;
        gnocchi) echo GNOCCHI_PORT ;;
    esac
}

# Show why $1 failed, then stop it and delete its state.
fail_service() {
    local svc=$1
    log "$svc failed to start; last log lines:"
    "${svc}_log" >&2
    "${svc}_stop" || true
    rm -rf "$(dir_of "$svc")"
    log "$svc: stopped and cleaned up; logs above (set" \
        "TELEMETER_SERVICES_TIMEOUT if it was only slow)"
}

# Stop the services in $@ (first argument 1 = keep data, 0 = delete it).
stop_services() {
    local keep=$1 svc t0 dir
    shift
    for svc in "$@"; do
        dir=$(dir_of "$svc")
        if [ ! -d "$dir" ]; then
            log "$svc: not running (no $dir)"
            continue
        fi
        t0=$(now_ns)
        "${svc}_stop"
        if [ "$keep" = 1 ]; then
            log "$svc stopped in $(since "$t0") s; data kept in $dir"
        else
            rm -rf "$dir"
            log "$svc stopped in $(since "$t0") s; $dir removed"
        fi
    done
    # Leave no empty state root behind.
    rmdir "$STATE_ROOT" 2> /dev/null || true
}

status_services() {
    local svc rc=0 dir
    for svc in "$@"; do
        dir=$(dir_of "$svc")
        if "${svc}_running"; then
            echo "$svc: running on 127.0.0.1:$(port_of "$svc")" \
                 "(pid $(cat "$dir/launcher.pid"), $dir)"
        elif [ -d "$dir" ]; then
            echo "$svc: stopped, data kept in $dir"
            rc=3
        else
            echo "$svc: not running"
            rc=3
        fi
    done
    return "$rc"
}

usage() {
    sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
    local cmd=${1:-} export_prefix='' arg
    local -a services=()
    [ $# -gt 0 ] && shift
    case "$cmd" in
        rabbitmqctl)
            rabbitmq_ctl "$@"
            return
            ;;
        -h|--help|help)
            usage
            return 0
            ;;
        up|down|stop|start|restart|status|env) ;;
        *)
            usage >&2
            die "unknown command '${cmd}'"
            ;;
    esac
    for arg in "$@"; do
        case "$arg" in
            --keep) ;;   # stop keeps data anyway; accepted for clarity
            --export) export_prefix="export " ;;
            all) services+=("${ALL_SERVICES[@]}") ;;
            rabbitmq|postgresql|mariadb|redis|snmpd|mongodb|gnocchi) services+=("$arg") ;;
            rabbit) services+=(rabbitmq) ;;
            postgres|pg) services+=(postgresql) ;;
            mysql) services+=(mariadb) ;;
            *) die "unknown service or option '$arg' (services:" \
                   "${ALL_SERVICES[*]})" ;;
        esac
    done
    if [ "${#services[@]}" -eq 0 ]; then
        services=("${ALL_SERVICES[@]}")
        # `down` also stops an snmpd started on demand (e.g. by a test
        # session that could not stop it itself); a no-op if none runs.
        [ "$cmd" != down ] || services+=(snmpd)
    fi

    case "$cmd" in
        up) mkdir -p "$STATE_ROOT"; start_services 0 "${services[@]}" ;;
        start) mkdir -p "$STATE_ROOT"; start_services 1 "${services[@]}" ;;
        down) stop_services 0 "${services[@]}" ;;
        stop) stop_services 1 "${services[@]}" ;;
        restart)
            stop_services 1 "${services[@]}"
            mkdir -p "$STATE_ROOT"
            start_services 1 "${services[@]}"
            ;;
        status) status_services "${services[@]}" ;;
        env)
            for arg in "${services[@]}"; do
                echo "$export_prefix$(url_of "$arg")"
            done
            ;;
    esac
}

main "$@"
