#!/usr/bin/env bash
# examples/multi-region, end to end (run by tests/run.sh, or alone):
#
#   1. terraform fmt -check of the example
#   2. terraform init -backend=false + validate
#   3. checkov over the example (and the module through its calls)
#   4. apply against one private moto server with all three regions on the
#      same endpoint; assertions through the AWS API: one shared table and
#      topic in the home region, one function per region, each with its
#      vantage name, the shared table's name and home region, a policy
#      that allows exactly the vantage's table calls, on the home region's
#      table only, and a dashboard with the vantage's own availability
#   5. destroy, and nothing of the stack left in any region
#
# Ends with "multi-region: N passed, M failed"; exits non-zero on failure.
# Needs what tests/run.sh needs (terraform with the provider mirror,
# python3 with boto3 and moto[server], checkov's venv).
set -uo pipefail

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
EXAMPLE_DIR="$INFRA_DIR/examples/multi-region"
TESTS_DIR="$INFRA_DIR/tests"
CHECKOV_VERSION=3.3.30
CHECKOV_VENV=${CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/pop3-probe/checkov-venv}

# shellcheck source=infra/scripts/moto.sh
. "$INFRA_DIR/scripts/moto.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/pop3-probe-multi-region.XXXXXX")
MOTO_PID=
cleanup() {
  moto_stop
  if [ "${KEEP_WORKDIR:-0}" = 1 ]; then echo "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export TF_CLI_CONFIG_FILE="$TESTS_DIR/terraformrc"
export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1
unset TF_WORKSPACE
tf() { TF_DATA_DIR="$WORK/tf" terraform -chdir="$EXAMPLE_DIR" "$@"; }

PASSED=0
FAILED=0
FAILED_NAMES=()
N=0
run_check() {
  local name=$1
  shift
  N=$((N + 1))
  local log="$WORK/check-$N.log" start=$SECONDS
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

run_checkov() {
  if [ ! -x "$CHECKOV_VENV/bin/checkov" ]; then
    python3 -m venv "$CHECKOV_VENV" &&
      "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" || return 1
  fi
  (cd "$EXAMPLE_DIR" && "$CHECKOV_VENV/bin/checkov" -d . --framework terraform --skip-download --compact --quiet \
    --download-external-modules false)
}

NAME=pop3-probe-mr
HOME_REGION=us-east-1
REGIONS="us-east-1 eu-west-1 ap-southeast-2"

# The stack through the AWS API (boto3 against moto), per region.
assert_stack() {
  python3 - "$1" "$NAME" "$HOME_REGION" $REGIONS <<'PY'
import json, os, sys
import boto3

mode, name, home, *regions = sys.argv[1:]
url = os.environ["AWS_ENDPOINT_URL"]
c = lambda svc, r: boto3.client(svc, region_name=r, endpoint_url=url)
bad = []
def check(ok, what):
    print(("PASS " if ok else "FAIL ") + what)
    if not ok:
        bad.append(what)

table = f"{name}-vantages"
tables = {r: c("dynamodb", r).list_tables()["TableNames"] for r in regions}
if mode == "applied":
    check(table in tables[home], f"shared table {table} in {home}")
    for r in regions:
        if r != home:
            check(table not in tables[r], f"no copy of the table in {r}")
    topics = [t["TopicArn"] for t in c("sns", home).list_topics()["Topics"]]
    topic = next((t for t in topics if t.endswith(f":{name}-vantage-alerts")), None)
    check(topic is not None, f"shared topic in {home}")
    for r in regions:
        fns = [f for f in c("lambda", r).list_functions()["Functions"] if f["FunctionName"].startswith(name)]
        check(len(fns) == 1, f"one function in {r} ({[f['FunctionName'] for f in fns]})")
        if not fns:
            continue
        env = fns[0].get("Environment", {}).get("Variables", {})
        check(env.get("POP3_PROBE_VANTAGE") == r, f"{r}: POP3_PROBE_VANTAGE={env.get('POP3_PROBE_VANTAGE')}")
        check(env.get("POP3_PROBE_STATE_TABLE") == table, f"{r}: the shared table")
        check(env.get("POP3_PROBE_STATE_REGION") == home, f"{r}: POP3_PROBE_STATE_REGION={home}")
        check(env.get("POP3_PROBE_TOPIC_ARN") == topic, f"{r}: the shared topic")
        role = fns[0]["Role"].split("/")[-1]
        iam = c("iam", r)
        docs = [iam.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"]
                for p in iam.list_role_policies(RoleName=role)["PolicyNames"]]
        stmts = [s for d in docs for s in (json.loads(d) if isinstance(d, str) else d)["Statement"]]
        ddb = [s for s in stmts if any(a.startswith("dynamodb:") for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))]
        res = sorted({x for s in ddb for x in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])})
        check(res and all(f":dynamodb:{home}:" in x and x.endswith(f"table/{table}") for x in res),
              f"{r}: table calls on the home table only ({res})")
        acts = sorted({a for s in ddb for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])})
        want = ["dynamodb:BatchGetItem", "dynamodb:PutItem"]
        check(acts == want, f"{r}: exactly the table calls a vantage makes ({acts})")
        # The vantage's own view beside the consensus, in its own region.
        body = json.dumps(json.loads(c("cloudwatch", r).get_dashboard(DashboardName=f"{name}-{r}")["DashboardBody"]))
        ns = env.get("POP3_PROBE_NAMESPACE")
        check("{" + f"{ns},Monitor,Vantage" + "}" in body and "MonitorsPartial" in body,
              f"{r}: dashboard shows per-vantage availability and MonitorsPartial")
else:
    for r in regions:
        check(table not in tables[r], f"{r}: no table left")
        fns = [f for f in c("lambda", r).list_functions()["Functions"] if f["FunctionName"].startswith(name)]
        check(not fns, f"{r}: no function left")
sys.exit(1 if bad else 0)
PY
}

echo "== examples/multi-region (work dir $WORK)"
run_check "multi-region: terraform fmt -check" terraform fmt -check -recursive -diff "$EXAMPLE_DIR"
run_check "multi-region: terraform init -backend=false" tf init -backend=false -input=false -no-color
run_check "multi-region: terraform validate" tf validate -no-color
run_check "multi-region: checkov (no failed checks)" run_checkov

if ! moto_start "$WORK/moto.log"; then
  FAILED=$((FAILED + 1))
  FAILED_NAMES+=("start moto_server")
  echo "FAIL  start moto_server"
else
  ZIP=$(placeholder_zip "$WORK")
  STATE="$WORK/multi-region.tfstate"
  VARS=(-var-file=moto.tfvars -var "aws_endpoint_url=$MOTO_URL" -var "lambda_zip=$ZIP")
  run_check "multi-region: apply against moto (3 regions, one endpoint)" \
    tf apply -auto-approve -no-color -lock=false -state="$STATE" "${VARS[@]}"
  run_check "multi-region: the applied stack" assert_stack applied
  run_check "multi-region: destroy against moto" \
    tf destroy -auto-approve -no-color -lock=false -state="$STATE" "${VARS[@]}"
  run_check "multi-region: nothing left behind" assert_stack destroyed
  moto_stop
fi

echo
[ "$FAILED" -gt 0 ] && echo "failed: ${FAILED_NAMES[*]}"
echo "multi-region: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
