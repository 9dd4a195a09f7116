#!/usr/bin/env bash
# Stop the Exim started by tests/smtp/ensure.sh from DIR. Safe to run when
# nothing is running. Leaves DIR's files (the log among them) in place.
#
#   tests/smtp/stop.sh DIR
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=../dovecot/lib.sh
. "$HERE/../dovecot/lib.sh"

(($# == 1)) || p3p_die "usage: $0 DIR"
[[ -d "$1" ]] || exit 0
DIR=$(cd -- "$1" && pwd -P)
CONF=$DIR/exim.conf

p3p_lock "$DIR"

# Only a live daemon started with DIR's config: never another Exim.
ours() {
    local pid=$1 cmd state
    [[ "$pid" =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$pid/status" 2>/dev/null) || return 1
    [[ "$state" != Z ]] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *exim* && "$cmd" == *"$CONF"* ]]
}

pid=$(head -n1 "$DIR/exim.pid" 2>/dev/null || true)
[[ -n "$pid" ]] || pid=$(sed -n 's/^EXIM_PID=//p' "$DIR/env" 2>/dev/null || true)
if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        ours "$pid" || break
        sleep 0.1
    done
    ours "$pid" && kill -KILL "$pid" 2>/dev/null
fi
# The env file no longer describes a running server.
rm -f "$DIR/env" "$DIR/.stamp"
