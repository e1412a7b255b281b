# tools/lib/loopback.sh - shell helpers of the throwaway test servers on
# loopback (tools/rabbitmq-cluster.sh, tools/redis-sentinel.sh). Sourced;
# the caller sets ROOT, its state directory, before calling pid_alive.

# True if something listens on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# PID in file $1 is alive, not a zombie, and runs in our state dir ($ROOT).
pid_alive() {
    local pid state cwd
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    state=$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$state" != Z ] || return 1
    if cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) && [ -n "$cwd" ]; then
        case "$cwd" in "$ROOT"|"$ROOT"/*) return 0 ;; *) return 1 ;; esac
    fi
}
