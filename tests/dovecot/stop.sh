#!/usr/bin/env bash
# Stop every Dovecot instance started by tests/dovecot/ensure.sh from DIR.
# Safe to run when nothing is running.  Leaves DIR's files in place.
#
#   tests/dovecot/stop.sh DIR
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

(($# == 1)) || p3p_die "usage: $0 DIR"
[[ -d "$1" ]] || exit 0
DIR=$(cd -- "$1" && pwd -P)

p3p_lock "$DIR"
p3p_stop_all "$DIR"
# The env file no longer describes running servers.
rm -f "$DIR/env" "$DIR/env.partial" "$DIR/.stamp"
