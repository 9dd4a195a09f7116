#!/usr/bin/env python3
"""The function's IAM policy and the Rust code must agree.

Every AWS API the code calls must be allowed by the policy, and the policy
must allow nothing the code does not call. The calls are read from the Rust
sources: the AWS SDK's fluent builders start with a snake_case method named
after the operation (`client.put_metric_data()...send().await`), so a scan of
`src/**/*.rs` for the method names below finds them. The policy is the one
actually attached to the function's role (dumped by assert_stack.py after
`terraform apply` against moto), or `terraform show -json` output.

Mapping: SDK fluent method -> IAM actions it needs
(the KMS actions follow from the module encrypting the secrets and the topic
with its own key: reading a secret needs kms:Decrypt; publishing to an SSE
topic needs kms:GenerateDataKey and kms:Decrypt)

    method               IAM actions
    -------------------  ----------------------------------------------------
    .get_secret_value()  secretsmanager:GetSecretValue, kms:Decrypt
    .put_metric_data()   cloudwatch:PutMetricData
    .publish()           sns:Publish, kms:GenerateDataKey, kms:Decrypt
    .batch_get_item()    dynamodb:BatchGetItem
    .put_item()          dynamodb:PutItem
    .get_item()          dynamodb:GetItem
    .update_item()       dynamodb:UpdateItem
    .query()             dynamodb:Query
    .delete_item()       dynamodb:DeleteItem
    .batch_write_item()  dynamodb:BatchWriteItem
    .get_metric_data()   cloudwatch:GetMetricData
    .list_metrics()      cloudwatch:ListMetrics

Always expected, whatever the code calls (the Lambda runtime writes the
function's logs with the function's role; the module creates the group, so
no logs:CreateLogGroup): logs:CreateLogStream, logs:PutLogEvents.

A new SDK call in src/ that is not in the table is not seen: add it to
METHOD_ACTIONS when the code starts using another operation.

If src/ contains none of the methods at all, the check fails: a policy check
with no code to compare against proves nothing.

Code that only the command-line tool runs is left out: `src/report/` (the
`pop3-probe report` command reads CloudWatch with the operator's own
credentials, never with the function's role). Its calls are listed but do
not count. That is only sound while the Lambda cannot reach that code, so the
check also fails when a file other than the CLI's own (`src/report/`,
`src/cli/`, `src/bin/pop3-probe.rs`) names the `report::` module: the
function would then make calls this check does not see.

    policy_vs_code.py --src src --policy lambda-policy.json
"""

import argparse
import json
import pathlib
import re
import sys

METHOD_ACTIONS = {
    "get_secret_value": ["secretsmanager:GetSecretValue", "kms:Decrypt"],
    "put_metric_data": ["cloudwatch:PutMetricData"],
    "publish": ["sns:Publish", "kms:GenerateDataKey", "kms:Decrypt"],
    "batch_get_item": ["dynamodb:BatchGetItem"],
    "put_item": ["dynamodb:PutItem"],
    "get_item": ["dynamodb:GetItem"],
    "update_item": ["dynamodb:UpdateItem"],
    "query": ["dynamodb:Query"],
    "delete_item": ["dynamodb:DeleteItem"],
    "batch_write_item": ["dynamodb:BatchWriteItem"],
    "get_metric_data": ["cloudwatch:GetMetricData"],
    "list_metrics": ["cloudwatch:ListMetrics"],
}

RUNTIME_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]

# Folders of src/ whose code runs only in the command-line tool, with the
# operator's credentials (`pop3-probe report` reads CloudWatch): their SDK
# calls are not the function's and must not widen its policy.
CLI_ONLY_DIRS = ("report",)
# The files that may use that code: itself and the command-line tool. Any
# other file (the Lambda's) that names `report::` fails the check.
CLI_FILES = tuple(d + "/" for d in CLI_ONLY_DIRS) + ("cli/", "bin/pop3-probe.rs")
CLI_ONLY_USE_RE = re.compile(r"\b(" + "|".join(CLI_ONLY_DIRS) + r")::")

# `.name()` with nothing between the parentheses, whitespace (a chain broken
# over lines) allowed around the dot.
CALL_RE = re.compile(r"\.\s*(" + "|".join(sorted(METHOD_ACTIONS)) + r")\s*\(\s*\)")


def strip_comments(text):
    """Remove // and /* */ comments (doc comments too), keeping line numbers.
    String literals are left alone: an SDK method name inside a string
    followed by "()" is not something Rust code does by accident."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def calls_in(src):
    """SDK calls by method: (the function's, the CLI-only code's), and the
    places outside the CLI that use the CLI-only code."""
    found, cli_only, leaks = {}, {}, []
    root = pathlib.Path(src)
    for path in sorted(root.rglob("*.rs")):
        rel = path.relative_to(root).as_posix()
        text = strip_comments(path.read_text(encoding="utf-8", errors="replace"))
        into = cli_only if rel.split("/")[0] in CLI_ONLY_DIRS else found
        for m in CALL_RE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            into.setdefault(m.group(1), []).append(f"{path}:{line}")
        if not rel.startswith(CLI_FILES):
            for m in CLI_ONLY_USE_RE.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                leaks.append(f"{path}:{line} ({m.group(0)})")
    return found, cli_only, leaks


def places(p):
    return f"{p[0]}" + (f" and {len(p) - 1} more" if len(p) > 1 else "")


def policy_actions(path):
    doc = json.loads(pathlib.Path(path).read_text())
    if "Statement" not in doc:
        doc = policy_from_terraform_json(doc)
    actions = set()
    for st in doc["Statement"]:
        if st.get("Effect") != "Allow":
            continue
        if "NotAction" in st:
            raise SystemExit(f"policy uses NotAction ({st.get('Sid')}): cannot be compared with the code")
        for a in st["Action"] if isinstance(st["Action"], list) else [st["Action"]]:
            if "*" in a:
                raise SystemExit(f"policy grants wildcard action {a!r} ({st.get('Sid')})")
            actions.add(a)
    return actions


def policy_from_terraform_json(doc):
    """The function role's policy from `terraform show -json` (state or plan)."""
    resources = []

    def walk(module):
        resources.extend(module.get("resources", []))
        for child in module.get("child_modules", []):
            walk(child)

    values = doc.get("values") or doc.get("planned_values") or {}
    walk(values.get("root_module", {}))
    for r in resources:
        if r["type"] == "aws_iam_role_policy" and r["name"] == "lambda":
            return json.loads(r["values"]["policy"])
    raise SystemExit("no aws_iam_role_policy.lambda in the terraform JSON")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", required=True, help="Rust source tree to scan (the crate's src/)")
    p.add_argument("--policy", required=True, help="policy document JSON, or terraform show -json output")
    args = p.parse_args()

    if not pathlib.Path(args.src).is_dir():
        print(f"FAIL policy-vs-code: {args.src} is not a directory; nothing to compare the policy with")
        return 1

    calls, cli_only, leaks = calls_in(args.src)
    for method, where in sorted(cli_only.items()):
        print(f"  not the function's: .{method}() in CLI-only code ({places(where)})")
    if leaks:
        print(
            "FAIL policy-vs-code: code outside the command-line tool uses CLI-only code "
            f"({', '.join('src/' + d + '/' for d in CLI_ONLY_DIRS)}, whose AWS calls this check leaves out): "
            + ", ".join(leaks)
        )
        print("     the Lambda must not make those calls; move what it needs out of the CLI-only folder")
        return 1
    if not calls:
        print(
            f"FAIL policy-vs-code: found no AWS SDK calls ({', '.join('.' + m + '()' for m in sorted(METHOD_ACTIONS))}) "
            f"in {args.src}/**/*.rs. The Lambda's AWS adapter is missing (or calls an operation this check does not "
            f"know: add it to METHOD_ACTIONS in {pathlib.Path(__file__).name}). Refusing to pass without code to compare."
        )
        return 1

    expected = set(RUNTIME_ACTIONS)
    for method in calls:
        expected.update(METHOD_ACTIONS[method])
    allowed = policy_actions(args.policy)

    for method, where in sorted(calls.items()):
        print(f"  code calls .{method}() -> {', '.join(METHOD_ACTIONS[method])}   ({places(where)})")

    missing = sorted(expected - allowed)
    extra = sorted(allowed - expected)
    if missing:
        print("FAIL policy-vs-code: the code needs actions the policy does not allow: " + ", ".join(missing))
        print("     add them to data.aws_iam_policy_document.lambda in infra/iam.tf (narrowest resource)")
    if extra:
        print("FAIL policy-vs-code: the policy allows actions the code never calls: " + ", ".join(extra))
        print("     remove them from infra/iam.tf, or add the call's method to METHOD_ACTIONS if the scan missed it")
    if missing or extra:
        return 1
    print(f"PASS policy-vs-code: policy allows exactly the {len(expected)} actions the code needs: {', '.join(sorted(expected))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
