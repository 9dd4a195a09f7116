#!/usr/bin/env bash
# Stop the Exim started by tests/smtp/ensure.sh from DIR. Safe to run when
# nothing is running. Leaves DIR's files (the log among them) in place.
#
#   tests/smtp/stop.sh DIR
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=../dovecot/lib.sh
. "$HERE/../dovecot/lib.sh"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

(($# == 1)) || p3p_die "usage: $0 DIR"
[[ -d "$1" ]] || exit 0
DIR=$(cd -- "$1" && pwd -P)
CONF=$DIR/exim.conf
PIDFILE=$DIR/exim.pid

p3p_lock "$DIR"

stop_exim "$(sed -n 's/^EXIM_PID=//p' "$DIR/env" 2>/dev/null || true)"
# The env file no longer describes a running server.
rm -f "$DIR/env" "$DIR/.stamp"
