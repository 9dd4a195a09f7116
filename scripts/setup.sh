#!/usr/bin/env bash
# Install everything the build, the tests and `make run` need on a fresh
# Debian machine. Safe to run again: each step checks before it installs.
# Needs root (or sudo) for apt-get.
set -euo pipefail

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: run as root or install sudo" >&2; exit 1; }
    SUDO="sudo"
fi

need_apt=()
. "$(dirname "$0")/packages.sh"
for pkg in $(debian_packages); do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    echo "setup: apt-get install ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# npm for the OAuth2 test server (tests/oauth2/ensure.sh runs `npm ci`):
# part of some nodejs builds, its own package in Debian's.
if ! command -v npm >/dev/null; then
    echo "setup: apt-get install npm"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq npm >/dev/null
fi

# The Debian packages try to start dovecot and exim as services; the tests
# run their own private instances on random loopback ports, so the system
# ones are not needed. chromium renders the HTML report in its test;
# prometheus (and its promtool) scrapes `serve` in tests/serve.rs, started
# by the test itself (the package's own service is not used).

# moto's server (AWS APIs for the tests), boto3 (infra assertions) and
# cargo-lambda (the Lambda emulator and the zip build, with zig).
pip_need=()
python3 -c 'import moto.server' 2>/dev/null || pip_need+=('moto[server]')
python3 -c 'import boto3' 2>/dev/null || pip_need+=(boto3)
command -v cargo-lambda >/dev/null || pip_need+=(cargo-lambda)
if ((${#pip_need[@]})); then
    echo "setup: pip install ${pip_need[*]}"
    python3 -m pip install -q --root-user-action=ignore "${pip_need[@]}"
fi

rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
echo "setup: done"
