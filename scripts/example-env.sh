# Sourced by `make run`: the test Dovecot's ports and account, as
# EXAMPLE_* variables (the env file is KEY=VALUE, not shell).
dir=${1:?usage: . scripts/example-env.sh DOVECOT_DIR}
get() { sed -n "s/^$1=//p" "$dir/env" | head -n1; }
EXAMPLE_USER=$(get USER)
EXAMPLE_POP3S_PORT=$(get POP3S_PORT)
EXAMPLE_STLS_PORT=$(get POP3_PLAIN_STLS_PORT)
EXAMPLE_CA=$(get CA_PEM)
EXAMPLE_PASSWORD=$(get PASSWORD)
export EXAMPLE_USER EXAMPLE_POP3S_PORT EXAMPLE_STLS_PORT EXAMPLE_CA EXAMPLE_PASSWORD
