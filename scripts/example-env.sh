# Sourced by `make run`: the test Dovecot's (and Exim's) ports and
# accounts, as EXAMPLE_* variables (the env files are KEY=VALUE, not shell).
dir=${1:?usage: . scripts/example-env.sh DOVECOT_DIR [SMTP_DIR]}
get() { sed -n "s/^$1=//p" "$dir/env" | head -n1; }
EXAMPLE_USER=$(get USER)
EXAMPLE_POP3S_PORT=$(get POP3S_PORT)
EXAMPLE_STLS_PORT=$(get POP3_PLAIN_STLS_PORT)
EXAMPLE_CA=$(get CA_PEM)
EXAMPLE_PASSWORD=$(get PASSWORD)
export EXAMPLE_USER EXAMPLE_POP3S_PORT EXAMPLE_STLS_PORT EXAMPLE_CA EXAMPLE_PASSWORD
if [ -n "${2:-}" ]; then
    EXAMPLE_SMTP_PASSWORD=$(sed -n "s/^SMTP_PASSWORD=//p" "$2/env" | head -n1)
    export EXAMPLE_SMTP_PASSWORD
fi
