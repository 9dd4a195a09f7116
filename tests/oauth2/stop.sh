#!/usr/bin/env bash
# Stop the servers tests/oauth2/ensure.sh started from DIR (its Dovecot
# instance and oidc-provider). Safe when nothing runs; leaves DIR's files.
#
#   tests/oauth2/stop.sh DIR
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=../dovecot/lib.sh
. "$HERE/../dovecot/lib.sh"
P3P_INSTANCES=(oauth)
# shellcheck source=node.sh
. "$HERE/node.sh"
# shellcheck source=../smtp/lib.sh
. "$HERE/../smtp/lib.sh"

(($# == 1)) || p3p_die "usage: $0 DIR"
[[ -d "$1" ]] || exit 0
DIR=$(cd -- "$1" && pwd -P)
CONF=$DIR/exim/exim.conf
PIDFILE=$DIR/exim/exim.pid

p3p_lock "$DIR"
p3p_stop_all "$DIR"
stop_node
stop_exim
rm -f "$DIR/env" "$DIR/env.partial" "$DIR/.stamp"
