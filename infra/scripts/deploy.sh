#!/usr/bin/env bash
# Plan and apply examples/complete.
#
#   infra/scripts/deploy.sh            real AWS, your usual credentials;
#                                      terraform shows the plan and asks
#   infra/scripts/deploy.sh destroy    tear the real deployment down
#   MOTO=1 infra/scripts/deploy.sh     start a private moto server on a free
#                                      loopback port, apply against it with
#                                      fake credentials, print the outputs,
#                                      then stop moto (state lives in a temp
#                                      dir and goes with it)
#
# Environment:
#   LAMBDA_ZIP   deployment zip (default target/lambda/pop3-probe-lambda/bootstrap.zip,
#                built by `make lambda`). With MOTO=1 a placeholder is used
#                if it does not exist.
#   TFVARS       extra -var-file for the real deployment (e.g. prod.tfvars)
#   MOTO_HOLD=1  with MOTO=1: keep moto running until Enter, to look around
#                with `aws --endpoint-url ...`
set -euo pipefail

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$INFRA_DIR/.." && pwd)
EXAMPLE_DIR="$INFRA_DIR/examples/complete"
LAMBDA_ZIP=${LAMBDA_ZIP:-$REPO_ROOT/target/lambda/pop3-probe-lambda/bootstrap.zip}
ACTION=${1:-apply}

# Offline machines: take the provider from the local mirror, unless a CLI
# config of your own exists.
if [ -d /opt/tf-plugins ] && { [ -z "${TF_CLI_CONFIG_FILE:-}" ] || [ ! -f "$TF_CLI_CONFIG_FILE" ]; }; then
  export TF_CLI_CONFIG_FILE="$INFRA_DIR/tests/terraformrc"
fi
export CHECKPOINT_DISABLE=1

if [ "${MOTO:-0}" = 1 ]; then
  # shellcheck source=infra/scripts/moto.sh
  . "$INFRA_DIR/scripts/moto.sh"
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/pop3-probe-deploy.XXXXXX")
  MOTO_PID=
  trap 'moto_stop; rm -rf "$WORK"' EXIT
  export TF_DATA_DIR="$WORK/tf"
  moto_start "$WORK/moto.log"
  echo "moto_server at $MOTO_URL (pid $MOTO_PID); fake credentials; state in $WORK"
  if [ ! -f "$LAMBDA_ZIP" ]; then
    echo "note: $LAMBDA_ZIP not built (make lambda); using a placeholder zip"
    LAMBDA_ZIP=$(placeholder_zip "$WORK")
  fi
  VARS=(-var-file=moto.tfvars -var "aws_endpoint_url=$MOTO_URL" -var "lambda_zip=$LAMBDA_ZIP")
  terraform -chdir="$EXAMPLE_DIR" init -backend=false -input=false
  terraform -chdir="$EXAMPLE_DIR" apply -auto-approve -input=false -state="$WORK/terraform.tfstate" "${VARS[@]}"
  if [ "${MOTO_HOLD:-0}" = 1 ] && [ -t 0 ]; then
    echo
    echo "moto keeps running at $MOTO_URL, e.g.:"
    echo "  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws --endpoint-url $MOTO_URL --region eu-west-1 scheduler list-schedules"
    read -r -p "Enter stops moto (and forgets the deployment). " _
  fi
  exit 0
fi

# Real AWS.
if [ "$ACTION" != destroy ] && [ ! -f "$LAMBDA_ZIP" ]; then
  echo "error: $LAMBDA_ZIP does not exist; build it with 'make lambda'" >&2
  exit 1
fi
VARS=(-var "lambda_zip=$LAMBDA_ZIP")
if [ -n "${TFVARS:-}" ]; then
  VARS+=(-var-file="$(cd "$(dirname "$TFVARS")" && pwd)/$(basename "$TFVARS")")
fi
terraform -chdir="$EXAMPLE_DIR" init -input=false
case "$ACTION" in
  apply) terraform -chdir="$EXAMPLE_DIR" apply "${VARS[@]}" ;;
  plan) terraform -chdir="$EXAMPLE_DIR" plan "${VARS[@]}" ;;
  destroy) terraform -chdir="$EXAMPLE_DIR" destroy "${VARS[@]}" ;;
  *)
    echo "usage: $0 [apply|plan|destroy]" >&2
    exit 2
    ;;
esac
