#!/usr/bin/env bash
# Every infra test, end to end, from a clean checkout:
#
#   1. terraform fmt -check -recursive
#   2. terraform init -backend=false + validate, for the module and each
#      example (complete, minimal, vpc, existing-resources)
#   3. terraform test (mocked provider, plan only): the schedule-interval
#      derivation for rate() and cron() forms, and the optional inputs
#      (knobs, bring-your-own, VPC) and the combinations refused
#   4. README documents every variable and output (readme_tables.py)
#   5. variable validations reject values that are easy to get wrong
#   6. checkov (own venv) over each example (and through it the module),
#      no failed checks
#   7. against a private moto server: apply, assertions through the AWS
#      API, a second plan that must be empty, destroy, nothing left behind,
#      for examples/complete (plus the SMS filters replayed through SQS),
#      examples/vpc and examples/existing-resources; then examples/minimal
#      three times side by side (the same name in two regions, a second
#      name in one region)
#   8. examples/multi-region (tests/multi_region.sh, its own moto server):
#      fmt, validate, checkov, apply of three vantages in three regions on
#      one endpoint, assertions, destroy; each of its checks counts here
#   9. policy-vs-code: the function's policy allows exactly what src/ calls
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
EXAMPLES=(complete minimal vpc existing-resources)
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
# tf_ex EXAMPLE ARGS... : terraform in examples/EXAMPLE, its own data dir.
tf_ex() {
  local ex=$1
  shift
  TF_DATA_DIR="$WORK/tf-$ex" terraform -chdir="$INFRA_DIR/examples/$ex" "$@"
}
tf_example() { tf_ex complete "$@"; }

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
    return 1
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
  # One column whatever the command's own spacing ("PASS x" or "PASS  x").
  sed -n 's/^PASS  */PASS  /p' "$log"
  if [ "$f" -gt 0 ]; then
    FAILED_NAMES+=("$name")
    grep '^FAIL ' "$log" | sed 's/^FAIL  */FAIL  /'
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

# run_checkov DIR : checkov over infra/DIR ("." = the module and all).
run_checkov() {
  ensure_checkov || return 1
  # --skip-download: no calls to the Bridgecrew platform. Checkov follows an
  # example's module call, so module resources are checked with that
  # example's inputs. Suppressions are inline #checkov:skip comments.
  (cd "$INFRA_DIR/$1" && "$CHECKOV_VENV/bin/checkov" -d . --framework terraform --skip-download --compact --quiet \
    --skip-path tests/fixtures)
}

echo "== pop3-probe infra tests (work dir $WORK)"

# ---------------------------------------------------------------- static
run_check "terraform fmt -check -recursive" terraform fmt -check -recursive -diff "$INFRA_DIR"
run_check "module: terraform init -backend=false" tf_module init -backend=false -input=false -no-color
run_check "module: terraform validate" tf_module validate -no-color
for ex in "${EXAMPLES[@]}"; do
  run_check "examples/$ex: terraform init -backend=false" tf_ex "$ex" init -backend=false -input=false -no-color
  run_check "examples/$ex: terraform validate" tf_ex "$ex" validate -no-color
done
run_check "terraform test: schedule interval, optional inputs (mocked provider)" tf_module test -no-color
count_checks "README documents every variable and output" python3 "$TESTS_DIR/readme_tables.py" --check
# Per example: checkov follows the module call with that example's inputs,
# so every module resource is checked in at least one configuration.
for ex in "${EXAMPLES[@]}"; do
  run_check "checkov over examples/$ex (no failed checks)" run_checkov "examples/$ex"
done

# ---------------------------------------------------------------- moto
MOTO_LOG="$WORK/moto.log"
if ! moto_start "$MOTO_LOG"; then
  FAILED=$((FAILED + 1))
  FAILED_NAMES+=("start moto_server")
  echo "FAIL  start moto_server"
else
  echo "      moto_server at $MOTO_URL (pid $MOTO_PID)"
  ZIP=$(placeholder_zip "$WORK")
  BASE=(-var "aws_endpoint_url=$MOTO_URL" -var "lambda_zip=$ZIP")
  TFVARS=(-var-file=moto.tfvars "${BASE[@]}")

  # Values that are easy to type wrong must be refused at plan time.
  run_check "validation rejects 'rate(5 minute)'" \
    expect_rejected 'schedule_expression must be' "${TFVARS[@]}" -var 'schedule_expression=rate(5 minute)'
  run_check "validation rejects a timeout not below the interval" \
    expect_rejected 'timeout_seconds must be below the schedule interval' "${TFVARS[@]}" \
    -var 'schedule_expression=rate(1 minute)' -var timeout_seconds=60
  run_check "validation rejects a cron whose interval it cannot derive" \
    expect_rejected 'cannot be derived from this schedule_expression' "${TFVARS[@]}" -var 'schedule_expression=cron(0 8 ? * MON-FRI *)'
  run_check "validation rejects architecture 'amd64'" \
    expect_rejected 'architecture must be' "${TFVARS[@]}" -var architecture=amd64
  run_check "validation rejects log retention of 10 days" \
    expect_rejected 'log_retention_days must be one of' "${TFVARS[@]}" -var log_retention_days=10
  run_check "validation rejects duration ratio 80 (percent, not fraction)" \
    expect_rejected 'duration_alarm_ratio is a fraction' "${TFVARS[@]}" -var duration_alarm_ratio=80

  # apply_and_check EX NAME STATE ASSERT-ARGS... : apply examples/EX, dump its
  # outputs to STATE.outputs.json, run assert_stack.py with ASSERT-ARGS (the
  # phase first), check a second plan is empty. Extra terraform arguments
  # come from the array EXTRA.
  apply_example() {
    local ex=$1 state=$2
    shift 2
    tf_ex "$ex" apply -auto-approve -no-color -lock=false -state="$state" "$@"
  }
  plan_is_clean() {
    local ex=$1 state=$2
    shift 2
    tf_ex "$ex" plan -no-color -lock=false -state="$state" "$@" -out="$state.replan" >/dev/null &&
      tf_ex "$ex" show -json "$state.replan" >"$state.replan.json" &&
      python3 "$TESTS_DIR/check_plan.py" "$state.replan.json" --moto
  }
  outputs_of() {
    local ex=$1 state=$2
    tf_ex "$ex" output -json -state="$state" >"$state.outputs.json" 2>"$state.outputs.err"
  }

  # -------- examples/complete
  NAME=pop3-probe-moto
  SHARDS=3
  STATE="$WORK/complete.tfstate"
  python3 "$TESTS_DIR/moto_fixtures.py" boundary >"$WORK/boundary.tfvars.json"
  BOUNDARY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["role_permissions_boundary"])' "$WORK/boundary.tfvars.json")
  CVARS=("${TFVARS[@]}" -var-file="$WORK/boundary.tfvars.json")
  run_check "examples/complete: terraform apply against moto" apply_example complete "$STATE" "${CVARS[@]}"
  if [ -s "$STATE" ] && outputs_of complete "$STATE"; then
    count_checks "examples/complete: assertions on the applied stack" \
      python3 "$TESTS_DIR/assert_stack.py" applied --outputs "$STATE.outputs.json" --name "$NAME" \
      --shards "$SHARDS" --schedule 'rate(5 minutes)' --interval 300 --timeout 50 \
      --role-path /pop3-probe/ --boundary "$BOUNDARY" --dump-policy "$WORK/lambda-policy.json"
    count_checks "examples/complete: SMS filters replayed through SQS" \
      python3 "$TESTS_DIR/assert_stack.py" sms --outputs "$STATE.outputs.json" --name "$NAME"
    run_check "examples/complete: a second plan after apply is empty" plan_is_clean complete "$STATE" "${CVARS[@]}"
    run_check "examples/complete: terraform destroy against moto" \
      tf_ex complete destroy -auto-approve -no-color -lock=false -state="$STATE" "${CVARS[@]}"
    count_checks "examples/complete: nothing left behind after destroy" \
      python3 "$TESTS_DIR/assert_stack.py" destroyed --name "$NAME"
  fi

  # -------- examples/vpc (subnets made by moto_fixtures.py)
  NAME=probe-vpc
  STATE="$WORK/vpc.tfstate"
  python3 "$TESTS_DIR/moto_fixtures.py" vpc >"$WORK/vpc.tfvars.json"
  VVARS=("${TFVARS[@]}" -var-file="$WORK/vpc.tfvars.json" -var "name=$NAME")
  run_check "examples/vpc: terraform apply against moto" apply_example vpc "$STATE" "${VVARS[@]}"
  if [ -s "$STATE" ] && outputs_of vpc "$STATE"; then
    count_checks "examples/vpc: VPC config, security group, ENI permissions" \
      python3 "$TESTS_DIR/assert_stack.py" vpc --outputs "$STATE.outputs.json" --fixtures "$WORK/vpc.tfvars.json" --name "$NAME"
    run_check "examples/vpc: a second plan after apply is empty" plan_is_clean vpc "$STATE" "${VVARS[@]}"
    run_check "examples/vpc: terraform destroy against moto" \
      tf_ex vpc destroy -auto-approve -no-color -lock=false -state="$STATE" "${VVARS[@]}"
    count_checks "examples/vpc: nothing left behind after destroy" \
      python3 "$TESTS_DIR/assert_stack.py" destroyed --name "$NAME"
  fi

  # -------- examples/existing-resources (key, topics, roles made by moto_fixtures.py)
  NAME=probe-byo
  STATE="$WORK/existing.tfstate"
  python3 "$TESTS_DIR/moto_fixtures.py" existing >"$WORK/existing.tfvars.json"
  EVARS=("${TFVARS[@]}" -var-file="$WORK/existing.tfvars.json" -var "name=$NAME")
  run_check "examples/existing-resources: terraform apply against moto" apply_example existing-resources "$STATE" "${EVARS[@]}"
  if [ -s "$STATE" ] && outputs_of existing-resources "$STATE"; then
    count_checks "examples/existing-resources: own key, topic, roles and pager in use" \
      python3 "$TESTS_DIR/assert_stack.py" existing --outputs "$STATE.outputs.json" --fixtures "$WORK/existing.tfvars.json" --name "$NAME"
    run_check "examples/existing-resources: a second plan after apply is empty" plan_is_clean existing-resources "$STATE" "${EVARS[@]}"
    run_check "examples/existing-resources: terraform destroy against moto" \
      tf_ex existing-resources destroy -auto-approve -no-color -lock=false -state="$STATE" "${EVARS[@]}"
    count_checks "examples/existing-resources: nothing left behind after destroy" \
      python3 "$TESTS_DIR/assert_stack.py" destroyed --name "$NAME"
  fi

  # -------- examples/minimal, three instances side by side in one account:
  # the same name in two regions, and a second name in the first region.
  SIDE=("eu-west-1:probe-a" "us-east-1:probe-a" "eu-west-1:probe-b")
  STACK_ARGS=()
  all_applied=1
  for spec in "${SIDE[@]}"; do
    region=${spec%%:*} name=${spec#*:}
    state="$WORK/minimal-$region-$name.tfstate"
    run_check "examples/minimal: apply $name in $region next to the others" \
      apply_example minimal "$state" -var-file=moto.tfvars "${BASE[@]}" -var "region=$region" -var "name=$name" || all_applied=0
    if [ -s "$state" ] && outputs_of minimal "$state"; then
      STACK_ARGS+=(--stack "$region:$name:$state.outputs.json")
    else
      all_applied=0
    fi
  done
  if [ "$all_applied" = 1 ]; then
    count_checks "examples/minimal: three instances side by side" \
      python3 "$TESTS_DIR/assert_stack.py" sidebyside "${STACK_ARGS[@]}" --name unused
  fi
  for spec in "${SIDE[@]}"; do
    region=${spec%%:*} name=${spec#*:}
    state="$WORK/minimal-$region-$name.tfstate"
    [ -s "$state" ] || continue
    run_check "examples/minimal: destroy $name in $region" \
      tf_ex minimal destroy -auto-approve -no-color -lock=false -state="$state" -var-file=moto.tfvars "${BASE[@]}" \
      -var "region=$region" -var "name=$name"
    count_checks "examples/minimal: nothing of $name left in $region" \
      env AWS_DEFAULT_REGION="$region" python3 "$TESTS_DIR/assert_stack.py" destroyed --name "$name"
  done
  moto_stop
fi

# ---------------------------------------------------------------- multi-region
# Three vantages of examples/multi-region (issue 16). The script starts its
# own moto server (this one is stopped above) and keeps its own work dir;
# each of its PASS/FAIL lines counts, its summary line does not.
count_checks "examples/multi-region" bash "$TESTS_DIR/multi_region.sh"

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
