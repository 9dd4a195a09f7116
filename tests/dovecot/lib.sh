# shellcheck shell=bash
# Shared helpers for tests/dovecot/ensure.sh and tests/dovecot/stop.sh.
# Sourced, not executed.

# Instances we run.  Each one gets DIR/<name>/{dovecot.conf,run/}.
P3P_INSTANCES=(main expired notls noapop)
P3P_MARKER=.pop3-probe-dovecot

p3p_log() { printf '[dovecot-harness] %s\n' "$*" >&2; }
p3p_die() { p3p_log "ERROR: $*"; exit 1; }

# Resolve DIR argument to an absolute, physical path (creating it).
p3p_resolve_dir() {
    local d=$1
    [[ -n "$d" ]] || p3p_die "usage: $0 DIR"
    mkdir -p -- "$d"
    (cd -- "$d" && pwd -P)
}

# Take DIR/.lock (fd 9).  Never let fd 9 leak into Dovecot (see 9>&- below).
p3p_lock() {
    local dir=$1
    exec 9>>"$dir/.lock"
    flock -w 180 9 || p3p_die "timed out waiting for lock $dir/.lock"
}

# Is PID a live Dovecot master that was started with config file CONF?
p3p_pid_is_ours() {
    local pid=$1 conf=$2 cmd
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *dovecot* && "$cmd" == *"$conf"* ]]
}

# Master pid of instance (empty if not running / not ours).
p3p_instance_pid() {
    local dir=$1 inst=$2 pid
    local conf=$dir/$inst/dovecot.conf pidfile=$dir/$inst/run/master.pid
    [[ -r "$pidfile" ]] || return 0
    pid=$(head -n1 "$pidfile" 2>/dev/null || true)
    if p3p_pid_is_ours "$pid" "$conf"; then echo "$pid"; fi
}

# TCP connect test (bash /dev/tcp, 1 s timeout).  0 = something accepts.
p3p_port_open() {
    timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# Stop every instance under DIR (caller holds the lock).  Safe when nothing runs.
p3p_stop_all() {
    local dir=$1 inst pid pids=() i
    for inst in "${P3P_INSTANCES[@]}"; do
        pid=$(p3p_instance_pid "$dir" "$inst")
        if [[ -n "$pid" ]]; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    # Also pids recorded in env (in case a pid file vanished).
    if [[ -r "$dir/env" ]]; then
        local recorded
        recorded=$(sed -n 's/^PIDS=//p' "$dir/env")
        for pid in $recorded; do
            for inst in "${P3P_INSTANCES[@]}"; do
                if p3p_pid_is_ours "$pid" "$dir/$inst/dovecot.conf"; then
                    kill -TERM "$pid" 2>/dev/null || true
                    pids+=("$pid")
                fi
            done
        done
    fi
    ((${#pids[@]})) || return 0
    # Dovecot master kills its children on SIGTERM; wait up to ~5 s.
    for ((i = 0; i < 50; i++)); do
        local alive=0
        for pid in "${pids[@]}"; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            p3p_log "master $pid did not exit on SIGTERM, sending SIGKILL"
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    # Wait until none of our ports is still bound (child processes gone).
    local envf=$dir/env port left
    [[ -r "$envf" ]] || envf=$dir/env.partial
    [[ -r "$envf" ]] || return 0
    for ((i = 0; i < 30; i++)); do
        left=0
        for port in $(sed -n 's/^POP3[A-Z_]*_PORT=//p' "$envf"); do
            p3p_port_open "$port" && left=1
        done
        ((left)) || break
        sleep 0.1
    done
}

# N -> N distinct currently-free ports on 127.0.0.1 (held open together while
# picked, so they differ; without python3, random ports that do not answer).
p3p_pick_ports() {
    if command -v python3 >/dev/null; then
        python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
    else
        local out=() p
        while ((${#out[@]} < $1)); do
            p=$((20000 + RANDOM % 12000))
            [[ " ${out[*]} " == *" $p "* ]] && continue
            p3p_port_open "$p" && continue
            out+=("$p")
        done
        echo "${out[*]}"
    fi
}

# openssl with its chatter in $PKI/openssl.log, shown only on failure.
p3p_ossl() { openssl "$@" >>"$PKI/openssl.log" 2>&1 || { tail -n 30 "$PKI/openssl.log" >&2; p3p_die "openssl $1 failed"; }; }
# An ECDSA P-256 key (small and fast; both Dovecot and Exim serve it).
p3p_newkey() { p3p_ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; chmod 600 "$1"; }
