#!/usr/bin/env bash
# Write a monitor list for the local test Dovecot (its ports change per
# start) from examples/local.template.json. Used by `make run`.
#   scripts/local-example.sh DOVECOT_DIR SMTP_DIR > target/local-monitors.json
set -euo pipefail
dir=${1:?usage: scripts/local-example.sh DOVECOT_DIR SMTP_DIR}
smtp=${2:?usage: scripts/local-example.sh DOVECOT_DIR SMTP_DIR}
get() { sed -n "s/^$1=//p" "$dir/env" | head -n1; }
smtp_get() { sed -n "s/^$1=//p" "$smtp/env" | head -n1; }
sed -e "s|@POP3S_PORT@|$(get POP3S_PORT)|g" \
    -e "s|@STLS_PORT@|$(get POP3_PLAIN_STLS_PORT)|g" \
    -e "s|@NOTLS_PORT@|$(get POP3_NOTLS_PORT)|g" \
    -e "s|@EXPIRED_PORT@|$(get POP3S_EXPIRED_PORT)|g" \
    -e "s|@CA_PEM@|$(get CA_PEM)|g" \
    -e "s|@USER@|$(get USER)|g" \
    -e "s|@SMTP_PORT@|$(smtp_get SMTP_PORT)|g" \
    -e "s|@SMTP_CA_PEM@|$(smtp_get CA_PEM)|g" \
    -e "s|@SMTP_USER@|$(smtp_get SMTP_USER)|g" \
    "$(dirname "$0")/../examples/local.template.json"
