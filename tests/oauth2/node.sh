# Finding and stopping the oidc-provider that tests/oauth2/ensure.sh starts
# from DIR; sourced by ensure.sh and stop.sh (both set DIR first).

# Is PID our oidc-provider (node running server.mjs from this DIR's npm)?
node_pid_is_ours() {
    local pid=$1 cmd
    [[ "$pid" =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *node* && "$cmd" == *"$DIR/npm/server.mjs"* ]]
}

# Every pid running our server.mjs, found by its command line: a server
# that never got to write its pid file (or was orphaned by a launcher that
# forked) is still found and stopped.
our_node_pids() {
    local f pid
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        node_pid_is_ours "$pid" && echo "$pid"
    done
    return 0
}

stop_node() {
    local pids i
    pids=$(our_node_pids)
    [[ -n "$pids" ]] || return 0
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        [[ -n "$(our_node_pids)" ]] || return 0
        sleep 0.1
    done
    pids=$(our_node_pids)
    # shellcheck disable=SC2086
    [[ -z "$pids" ]] || kill -KILL $pids 2>/dev/null || true
}
