#!/usr/bin/env bash
# Every infra test, end to end, from a clean checkout:
#
#   1. terraform fmt -check -recursive
#   2. terraform init -backend=false + validate, for the module and the example
#   3. variable validations reject values that are easy to get wrong
#   4. checkov over infra/ (own venv), no failed checks
#   5. terraform apply of examples/complete against a private moto server,
#      assertions through the AWS API, a second plan that must be empty,
#      terraform destroy, and a check that nothing is left behind
#   6. policy-vs-code: the function's policy allows exactly what src/ calls
#      (plus a self-test of that check on fixture trees)
#
# Ends with "infra: N passed, M failed"; exits non-zero if anything failed.
#
# Needs: terraform (with the provider mirror in /opt/tf-plugins), python3
# with boto3 and moto[server] (tests/setup.sh installs them), network access
# to PyPI only the first time (checkov venv).
#
# Environment:
#   CHECKOV_VENV            where the checkov venv lives
#                           (default ~/.cache/pop3-probe/checkov-venv)
#   SKIP_POLICY_CODE_CHECK=1  skip the policy-vs-code check against src/
#                           (the fixture self-test still runs). Only for
#                           interim runs before the Rust AWS adapter exists;
#                           CI never sets it.
#   KEEP_WORKDIR=1          keep the temp dir (logs, state, plan) for debugging
set -uo pipefail

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$INFRA_DIR/.." && pwd)
EXAMPLE_DIR="$INFRA_DIR/examples/complete"
TESTS_DIR="$INFRA_DIR/tests"
CHECKOV_VERSION=3.3.30
CHECKOV_VENV=${CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pop3-probe/checkov-venv}

# shellcheck source=infra/scripts/moto.sh
. "$INFRA_DIR/scripts/moto.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pop3-probe-infra.XXXXXX")
MOTO_PID=

cleanup() {
  moto_stop
  if [ "${KEEP_WORKDIR:-0}" = 1 ]; then
    echo "work dir kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Terraform: providers only from the mirror, .terraform/ and state in the temp
# dir (only the git-ignored .terraform.lock.hcl lands in the checkout), no
# prompts, no update checks.
export TF_CLI_CONFIG_FILE="$TESTS_DIR/terraformrc"
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
unset TF_WORKSPACE
tf_module() { TF_DATA_DIR="$WORK/tf-module" terraform -chdir="$INFRA_DIR" "$@"; }
tf_example() { TF_DATA_DIR="$WORK/tf-example" terraform -chdir="$EXAMPLE_DIR" "$@"; }

PASSED=0
FAILED=0
FAILED_NAMES=()
N=0

# run_check NAME CMD... : one check; its output goes to a log, shown on failure.
run_check() {
  local name=$1
  shift
  N=$((N + 1))
  local log="$WORK/check-$N.log"
  local start=$SECONDS
  if "$@" >"$log" 2>&1; then
    PASSED=$((PASSED + 1))
    printf 'PASS  %-62s %4ss\n' "$name" $((SECONDS - start))
  else
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("$name")
    printf 'FAIL  %-62s %4ss\n' "$name" $((SECONDS - start))
    sed 's/^/      | /' "$log" | tail -n 60
  fi
}

# count_checks NAME CMD... : CMD prints "PASS x" / "FAIL x: why" lines (one per
# check); each counts. The command failing without any FAIL line counts once.
count_checks() {
  local name=$1
  shift
  N=$((N + 1))
  local log="$WORK/check-$N.log" rc p f
  "$@" >"$log" 2>&1
  rc=$?
  p=$(grep -c '^PASS ' "$log")
  f=$(grep -c '^FAIL ' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  sed -n 's/^PASS /PASS  /p' "$log"
  if [ "$f" -gt 0 ]; then
    FAILED_NAMES+=("$name")
    grep '^FAIL ' "$log" | sed 's/^FAIL /FAIL  /'
    sed 's/^/      | /' "$log" | grep -v '| PASS ' | tail -n 60
  fi
}

# expect_rejected NAME PATTERN TF-ARGS... : plan must fail with PATTERN in its output.
expect_rejected() {
  local pattern=$1
  shift
  local out
  if out=$(tf_example plan -no-color -lock=false "$@" 2>&1); then
    echo "plan accepted a value it should reject: $*"
    return 1
  fi
  if ! grep -q -- "$pattern" <<<"$out"; then
    echo "plan failed, but not with \"$pattern\":"
    echo "$out"
    return 1
  fi
}

ensure_checkov() {
  if [ ! -x "$CHECKOV_VENV/bin/checkov" ] ||
    [ "$("$CHECKOV_VENV/bin/python" -c 'import checkov.version as v; print(v.version)' 2>/dev/null)" != "$CHECKOV_VERSION" ]; then
    echo "creating checkov $CHECKOV_VERSION venv in $CHECKOV_VENV"
    rm -rf "$CHECKOV_VENV"
    mkdir -p "$(dirname "$CHECKOV_VENV")"
    python3 -m venv "$CHECKOV_VENV" &&
      "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  fi
}

run_checkov() {
  ensure_checkov || return 1
  # --skip-download: no calls to the Bridgecrew platform. Checkov follows the
  # example's module call, so module resources are checked with the
  # example's inputs. Suppressions are inline #checkov:skip comments.
  (cd "$INFRA_DIR" && "$CHECKOV_VENV/bin/checkov" -d . --framework terraform --skip-download --compact --quiet \
    --skip-path tests/fixtures)
}

echo "== pop3-probe infra tests (work dir $WORK)"

# ---------------------------------------------------------------- static
run_check "terraform fmt -check -recursive" terraform fmt -check -recursive -diff "$INFRA_DIR"
run_check "module: terraform init -backend=false" tf_module init -backend=false -input=false -no-color
run_check "module: terraform validate" tf_module validate -no-color
run_check "example: terraform init -backend=false" tf_example init -backend=false -input=false -no-color
run_check "example: terraform validate" tf_example validate -no-color
run_check "checkov over infra/ (no failed checks)" run_checkov

# ---------------------------------------------------------------- moto
MOTO_LOG="$WORK/moto.log"
if ! moto_start "$MOTO_LOG"; then
  FAILED=$((FAILED + 1))
  FAILED_NAMES+=("start moto_server")
  echo "FAIL  start moto_server"
else
  echo "      moto_server at $MOTO_URL (pid $MOTO_PID)"
  ZIP=$(placeholder_zip "$WORK")
  STATE="$WORK/example.tfstate"
  TFVARS=(-var-file=moto.tfvars -var "aws_endpoint_url=$MOTO_URL" -var "lambda_zip=$ZIP")
  NAME=pop3-probe-moto
  SHARDS=3

  # Values that are easy to type wrong must be refused at plan time.
  run_check "validation rejects 'rate(5 minute)'" \
    expect_rejected 'schedule_expression must be' "${TFVARS[@]}" -var 'schedule_expression=rate(5 minute)'
  run_check "validation rejects a timeout not below the interval" \
    expect_rejected 'timeout_seconds must be below the schedule interval' "${TFVARS[@]}" \
    -var 'schedule_expression=rate(1 minute)' -var timeout_seconds=60
  run_check "validation rejects architecture 'amd64'" \
    expect_rejected 'architecture must be' "${TFVARS[@]}" -var architecture=amd64
  run_check "validation rejects log retention of 10 days" \
    expect_rejected 'log_retention_days must be one of' "${TFVARS[@]}" -var log_retention_days=10
  run_check "validation rejects duration ratio 80 (percent, not fraction)" \
    expect_rejected 'duration_alarm_ratio is a fraction' "${TFVARS[@]}" -var duration_alarm_ratio=80

  run_check "example: terraform apply against moto" \
    tf_example apply -auto-approve -no-color -lock=false -state="$STATE" "${TFVARS[@]}"

  if [ -s "$STATE" ]; then
    tf_example output -json -state="$STATE" >"$WORK/outputs.json" 2>"$WORK/outputs.err"
    count_checks "assertions on the applied stack" \
      python3 "$TESTS_DIR/assert_stack.py" applied --outputs "$WORK/outputs.json" --name "$NAME" \
      --shards "$SHARDS" --schedule 'rate(5 minutes)' --interval 300 --timeout 50 \
      --dump-policy "$WORK/lambda-policy.json"

    plan_is_clean() {
      tf_example plan -no-color -lock=false -state="$STATE" "${TFVARS[@]}" -out="$WORK/replan.tfplan" >/dev/null &&
        tf_example show -json "$WORK/replan.tfplan" >"$WORK/replan.json" &&
        python3 "$TESTS_DIR/check_plan.py" "$WORK/replan.json" --moto
    }
    run_check "a second plan after apply is empty" plan_is_clean

    run_check "example: terraform destroy against moto" \
      tf_example destroy -auto-approve -no-color -lock=false -state="$STATE" "${TFVARS[@]}"
    count_checks "nothing left behind after destroy" \
      python3 "$TESTS_DIR/assert_stack.py" destroyed --name "$NAME"
  fi
  moto_stop
fi

# ---------------------------------------------------------------- policy vs code
POLICY="$WORK/lambda-policy.json"
if [ ! -s "$POLICY" ]; then
  FAILED=$((FAILED + 1))
  FAILED_NAMES+=("policy-vs-code (no policy: apply failed)")
  echo "FAIL  policy-vs-code: the function's policy was not captured (apply or assertions failed)"
else
  # The check itself must pass on the right code and fail on the wrong code.
  selftest() {
    local fx="$TESTS_DIR/fixtures"
    for good in src-exact src-report-cli; do
      python3 "$TESTS_DIR/policy_vs_code.py" --src "$fx/$good" --policy "$POLICY" || return 1
    done
    for bad in src-extra src-fewer src-none src-lambda-metrics src-lambda-uses-report; do
      if python3 "$TESTS_DIR/policy_vs_code.py" --src "$fx/$bad" --policy "$POLICY"; then
        echo "policy_vs_code.py passed on fixtures/$bad; it must fail there"
        return 1
      fi
    done
  }
  run_check "policy-vs-code self-test on fixture source trees" selftest

  if [ "${SKIP_POLICY_CODE_CHECK:-0}" = 1 ]; then
    echo "SKIP  policy-vs-code against src/ (SKIP_POLICY_CODE_CHECK=1: interim runs only, never in CI)"
  else
    run_check "policy-vs-code: policy allows exactly what src/ calls" \
      python3 "$TESTS_DIR/policy_vs_code.py" --src "$REPO_ROOT/src" --policy "$POLICY"
  fi
fi
run_check "metrics-vs-code: every metric infra/*.tf names is one src/metrics.rs publishes" bash -c 'python3 "$0/metrics_vs_code.py" --self-test && python3 "$0/metrics_vs_code.py"' "$TESTS_DIR"

echo
if [ "$FAILED" -gt 0 ]; then
  echo "failed: ${FAILED_NAMES[*]}"
fi
echo "infra: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
