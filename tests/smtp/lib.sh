# Exim helpers shared by tests/smtp/ensure.sh (the SMTP test server),
# tests/smtp/stop.sh and tests/oauth2/ensure.sh (its XOAUTH2/OAUTHBEARER
# listener). Sourced after tests/dovecot/lib.sh; the caller sets CONF (the
# -C configuration) and PIDFILE.

# Is PID a live (not zombie) Exim daemon started with our config?
exim_pid_is_ours() {
    local pid=$1 cmd state
    [[ "$pid" =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null) || return 1
    [[ "$state" != Z ]] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *exim* && "$cmd" == *"$CONF"* ]]
}

exim_pid() {
    local pid
    [[ -r "$PIDFILE" ]] || return 0
    pid=$(head -n1 "$PIDFILE" 2>/dev/null || true)
    if exim_pid_is_ours "$pid"; then echo "$pid"; fi
}

# Stop our daemon: the one in PIDFILE, else PID if given (a pid recorded
# elsewhere, should the pid file be gone). Never another Exim.
stop_exim() { # [PID]
    local pid i
    pid=$(exim_pid)
    if [[ -z "$pid" ]] && exim_pid_is_ours "${1:-}"; then pid=$1; fi
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        exim_pid_is_ours "$pid" || return 0
        sleep 0.1
    done
    p3p_log "exim $pid did not exit on SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}

# The first reply line on a plaintext port (the banner).
smtp_banner() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r l <&3 || exit 1
        printf "QUIT\r\n" >&3
        printf "%s\n" "${l%$'"'\r'"'}"' _ "$1" 2>/dev/null
}

# EHLO on a plaintext port; prints the extension keywords, one a line.
smtp_ehlo() {
    timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        IFS= read -r l <&3 || exit 1
        printf "EHLO harness.test\r\n" >&3
        while IFS= read -r l <&3; do
            l=${l%$'"'\r'"'}
            printf "%s\n" "${l:4}"
            [[ $l == 250-* ]] || break
        done
        printf "QUIT\r\n" >&3' _ "$1" 2>/dev/null
}

# Check CONF with -bV, then start the daemon. Returns 0 once the pid file
# names our live daemon, 2 when a port was taken (STARTUP_LOG or MAINLOG
# says so; STARTUP_LOG is emptied for the next try), 1 otherwise.
exim_start() { # STARTUP_LOG MAINLOG
    local startup=$1 mainlog=$2 rc=0 i
    exim -C "$CONF" -bV >"$startup.check" 2>&1 \
        || { cat "$startup.check" >&2; p3p_die "exim rejects the generated configuration $CONF"; }
    # -bd daemonizes; fd 9 (our flock) must not leak into the daemon, and
    # its stdio goes to a file so callers capturing ours don't wait on it.
    exim -C "$CONF" -bd -oP "$PIDFILE" </dev/null >>"$startup" 2>&1 9>&- || rc=$?
    if ((rc == 0)); then
        for ((i = 0; i < 50; i++)); do
            [[ -n "$(exim_pid)" ]] && return 0
            sleep 0.1
        done
    fi
    if grep -qi 'address already in use' "$startup" "$mainlog" 2>/dev/null; then
        : >"$startup"
        return 2
    fi
    return 1
}
