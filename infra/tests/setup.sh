#!/usr/bin/env bash
# Install what infra/tests/run.sh needs on a fresh Debian machine, as root.
# Idempotent: safe to run again. Terraform itself and its AWS provider
# mirror (/opt/tf-plugins) come with the machine image; this only checks them.
set -euo pipefail

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHECKOV_VERSION=$(sed -n 's/^CHECKOV_VERSION=//p' "$INFRA_DIR/tests/run.sh")
CHECKOV_VENV=${CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pop3-probe/checkov-venv}

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq python3-venv python3-pip >/dev/null
fi

# moto's server and boto3 for the apply test and its assertions.
if ! python3 -c 'import boto3, moto.server' 2>/dev/null || ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install -q --root-user-action=ignore 'moto[server]' boto3 ||
    python3 -m pip install -q --root-user-action=ignore --break-system-packages 'moto[server]' boto3
fi

# checkov pins old botocore: it gets its own venv, never the main Python.
if [ "$("$CHECKOV_VENV/bin/python" -c 'import checkov.version as v; print(v.version)' 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
  rm -rf "$CHECKOV_VENV"
  mkdir -p "$(dirname "$CHECKOV_VENV")"
  python3 -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/pip" install -q --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi

command -v terraform >/dev/null || { echo "terraform not found (expected /usr/local/bin/terraform)" >&2; exit 1; }
[ -d /opt/tf-plugins/registry.terraform.io/hashicorp/aws ] ||
  { echo "AWS provider mirror /opt/tf-plugins missing" >&2; exit 1; }
echo "infra test tools ready: $(TF_CLI_CONFIG_FILE="$INFRA_DIR/tests/terraformrc" terraform version | head -1), moto $(python3 -c 'import moto; print(moto.__version__)'), checkov $CHECKOV_VERSION"
