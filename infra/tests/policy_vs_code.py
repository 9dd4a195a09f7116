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
    found = {}
    for path in sorted(pathlib.Path(src).rglob("*.rs")):
        text = strip_comments(path.read_text(encoding="utf-8", errors="replace"))
        for m in CALL_RE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.setdefault(m.group(1), []).append(f"{path}:{line}")
    return found


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

    calls = calls_in(args.src)
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

    for method, places in sorted(calls.items()):
        print(f"  code calls .{method}() -> {', '.join(METHOD_ACTIONS[method])}   ({places[0]}" +
              (f" and {len(places) - 1} more)" if len(places) > 1 else ")"))

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
