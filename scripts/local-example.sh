#!/usr/bin/env bash
# Write a monitor list for the local test Dovecot (its ports change per
# start) from examples/local.template.json. Used by `make run`.
#   scripts/local-example.sh DOVECOT_DIR > target/local-monitors.json
set -euo pipefail
dir=${1:?usage: scripts/local-example.sh DOVECOT_DIR}
get() { sed -n "s/^$1=//p" "$dir/env" | head -n1; }
sed -e "s|@POP3S_PORT@|$(get POP3S_PORT)|g" \
    -e "s|@STLS_PORT@|$(get POP3_PLAIN_STLS_PORT)|g" \
    -e "s|@NOTLS_PORT@|$(get POP3_NOTLS_PORT)|g" \
    -e "s|@EXPIRED_PORT@|$(get POP3S_EXPIRED_PORT)|g" \
    -e "s|@CA_PEM@|$(get CA_PEM)|g" \
    -e "s|@USER@|$(get USER)|g" \
    "$(dirname "$0")/../examples/local.template.json"
