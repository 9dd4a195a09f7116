#!/usr/bin/env bash
# Install what `make bench` needs besides the project's own setup
# (scripts/setup.sh: Rust, Dovecot, cargo-lambda). Idempotent; runs as root.
#   bash peer-bench/setup.sh [--no-zip]
set -euo pipefail
# The peers are in the project's one package list (scripts/packages.debian);
# install any that are missing.
. "$(dirname "$0")/../scripts/packages.sh"
need=()
for pkg in $(debian_packages); do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
# The packaged exporter's service would hold port 9115; the bench runs its
# own instance on a random loopback port, so the service is not needed.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus-blackbox-exporter 2>/dev/null; then
    systemctl stop prometheus-blackbox-exporter || true
fi
if [[ "${1:-}" != --no-zip ]]; then
    command -v cargo-lambda >/dev/null || pip install --quiet cargo-lambda
    rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu \
        || rustup target add aarch64-unknown-linux-gnu
fi
echo "bench peers ready"
