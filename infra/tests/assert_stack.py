#!/usr/bin/env python3
"""Check, through the AWS API, what `terraform apply` of examples/complete
created (phase "applied"), or that `terraform destroy` left nothing behind
(phase "destroyed").

Run by tests/run.sh against moto's server; the endpoint comes from
AWS_ENDPOINT_URL and the expected values from `terraform output -json` and
the tfvars the example was applied with (moto.tfvars).

Each check prints "PASS <name>" or "FAIL <name>: <why>"; run.sh counts them.
Exit status is non-zero if any check failed.

    assert_stack.py applied   --outputs outputs.json --name pop3-probe-moto \
        --shards 3 --dump-policy lambda-policy.json
    assert_stack.py destroyed --name pop3-probe-moto
"""

import argparse
import json
import os
import sys
import traceback

import boto3
from botocore.exceptions import ClientError

RESULTS = []


def check(name):
    """Decorator: run the function below as one named check at once, record
    PASS/FAIL, never raise."""

    def wrap(fn):
        def run(*args, **kwargs):
            try:
                fn(*args, **kwargs)
            except AssertionError as exc:
                RESULTS.append((name, False))
                print(f"FAIL {name}: {exc}", flush=True)
            except Exception:  # an API error is a failed check, with detail
                RESULTS.append((name, False))
                print(f"FAIL {name}: unexpected error", flush=True)
                traceback.print_exc()
            else:
                RESULTS.append((name, True))
                print(f"PASS {name}", flush=True)

        run()  # the decorated function is the check: run it right away
        return run

    return wrap


def eq(actual, expected, what):
    assert actual == expected, f"{what}: expected {expected!r}, got {actual!r}"


def client(service):
    return boto3.client(
        service,
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name=os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
    )


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements_by_sid(doc):
    if isinstance(doc, str):
        doc = json.loads(doc)
    out = {}
    for st in doc["Statement"]:
        assert st.get("Effect") == "Allow", f"unexpected Effect in {st}"
        assert "NotAction" not in st and "NotResource" not in st, f"NotAction/NotResource in {st}"
        out[st["Sid"]] = {
            "actions": sorted(as_list(st["Action"])),
            "resources": sorted(as_list(st["Resource"])),
            "condition": st.get("Condition"),
        }
    return out


# ---------------------------------------------------------------------------
# phase: applied
# ---------------------------------------------------------------------------


def applied(args):
    out = {k: v["value"] for k, v in json.load(open(args.outputs)).items()}
    name = args.name
    fn_arn = out["function_arn"]
    topic = out["topic_arn"]
    key = out["kms_key_arn"]
    table = out["state_table_name"]
    table_arn = out["state_table_arn"]
    secret = out["config_secret_arn"]
    account_secrets = sorted(out["account_secret_arns"].values())
    dlq_url = out["dead_letter_queue_url"]
    region = os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")
    account = fn_arn.split(":")[4]
    log_group = f"/aws/lambda/{name}"
    log_group_arn = f"arn:aws:logs:{region}:{account}:log-group:{log_group}"
    interval = args.interval
    timeout = args.timeout

    sqs = client("sqs")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam = client("lambda")
    iam = client("iam")

    @check("lambda: runtime, handler, arm64, memory, timeout, role")
    def _():
        cfg = lam.get_function(FunctionName=name)["Configuration"]
        eq(cfg["Runtime"], "provided.al2023", "runtime")
        eq(cfg["Handler"], "bootstrap", "handler")
        eq(cfg["Architectures"], ["arm64"], "architectures")
        eq(cfg["MemorySize"], 128, "memory")
        eq(cfg["Timeout"], timeout, "timeout")
        assert timeout < interval, f"timeout {timeout} not below interval {interval}"
        eq(cfg["Role"], out["function_role_arn"], "role")

    @check("lambda: environment names the secret, namespace, topic, table and holds no secret value")
    def _():
        env = lam.get_function(FunctionName=name)["Configuration"]["Environment"]["Variables"]
        eq(
            env,
            {
                "POP3_PROBE_CONFIG_SECRET": secret,
                "POP3_PROBE_NAMESPACE": "Pop3Probe",
                "POP3_PROBE_TOPIC_ARN": topic,
                "POP3_PROBE_STATE_TABLE": table,
                "RUST_LOG": "info",
                # The example's schedule: rate(5 minutes).
                "POP3_PROBE_SCHEDULE_SECONDS": "300",
            },
            "environment",
        )

    @check("lambda: reserved concurrency = shards, async retries off")
    def _():
        conc = lam.get_function_concurrency(FunctionName=name)
        eq(conc.get("ReservedConcurrentExecutions"), args.shards, "reserved concurrency")
        eic = lam.get_function_event_invoke_config(FunctionName=name)
        eq(eic["MaximumRetryAttempts"], 0, "async retries")
        eq(eic["MaximumEventAgeInSeconds"], interval, "async max event age")

    @check("logs: module-owned log group with retention and the module's key")
    def _():
        groups = client("logs").describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]
        groups = [g for g in groups if g["logGroupName"] == log_group]
        eq(len(groups), 1, "log groups named " + log_group)
        eq(groups[0].get("retentionInDays"), 30, "retention")
        eq(groups[0].get("kmsKeyId"), key, "log group key")

    @check("schedules: one per shard, targeting the function with the shard input")
    def _():
        sch = client("scheduler")
        group = out["schedule_group_name"]
        names = sorted(s["Name"] for s in sch.list_schedules(GroupName=group)["Schedules"])
        eq(names, [f"{name}-shard-{i}" for i in range(args.shards)], "schedule names")
        eq(len(out["schedule_arns"]), args.shards, "schedule_arns output")
        for i in range(args.shards):
            s = sch.get_schedule(Name=f"{name}-shard-{i}", GroupName=group)
            t = s["Target"]
            eq(t["Arn"], fn_arn, f"shard {i} target")
            eq(json.loads(t["Input"]), {"shard": i, "shards": args.shards}, f"shard {i} input")
            eq(s["ScheduleExpression"], args.schedule, f"shard {i} expression")
            eq(s["FlexibleTimeWindow"], {"Mode": "OFF"}, f"shard {i} flexible window")
            eq(s["State"], "ENABLED", f"shard {i} state")
            eq(t["RetryPolicy"], {"MaximumEventAgeInSeconds": interval, "MaximumRetryAttempts": 2}, f"shard {i} retry")
            eq(t["DeadLetterConfig"], {"Arn": dlq_arn}, f"shard {i} DLQ")
            eq(t["RoleArn"].split("/")[-1], f"{name}-scheduler", f"shard {i} role")
            eq(s.get("KmsKeyArn"), key, f"shard {i} key")

    @check("dlq: encrypted with the module's key, writable only by the scheduler role")
    def _():
        attrs = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
        eq(attrs.get("KmsMasterKeyId"), key, "queue key")
        pol = statements_by_sid(attrs["Policy"])
        eq(list(pol), ["SchedulerDeadLetter"], "queue policy statements")
        eq(pol["SchedulerDeadLetter"]["actions"], ["sqs:SendMessage"], "queue policy actions")

    @check("iam: function role has exactly the intended actions on the intended resources")
    def _():
        role = f"{name}-lambda"
        eq(iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"], [], "managed policies attached")
        eq(iam.list_role_policies(RoleName=role)["PolicyNames"], [role], "inline policies")
        doc = iam.get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"]
        if args.dump_policy:
            with open(args.dump_policy, "w") as fh:
                json.dump(doc if isinstance(doc, dict) else json.loads(doc), fh, indent=2)
        got = statements_by_sid(doc)
        want = {
            "ReadProbeSecrets": {
                "actions": ["secretsmanager:GetSecretValue"],
                "resources": sorted([secret] + account_secrets),
                "condition": None,
            },
            "PublishProbeMetrics": {
                "actions": ["cloudwatch:PutMetricData"],
                "resources": ["*"],
                "condition": {"StringEquals": {"cloudwatch:namespace": "Pop3Probe"}},
            },
            "PublishAlerts": {"actions": ["sns:Publish"], "resources": [topic], "condition": None},
            "AlertState": {
                "actions": ["dynamodb:BatchGetItem", "dynamodb:PutItem"],
                "resources": [table_arn],
                "condition": None,
            },
            "UseModuleKey": {"actions": ["kms:Decrypt", "kms:GenerateDataKey"], "resources": [key], "condition": None},
            "WriteOwnLogs": {
                "actions": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "resources": [log_group_arn + ":*"],
                "condition": None,
            },
        }
        eq(got, want, "function role policy")
        # "*" only where AWS has no resource-level permission, and then
        # only with the namespace condition.
        for sid, st in got.items():
            if "*" in st["resources"]:
                assert sid == "PublishProbeMetrics" and st["condition"], f"{sid} uses Resource *"
        assert not any("logs:CreateLogGroup" in st["actions"] for st in got.values()), "CreateLogGroup granted"

    @check("iam: scheduler role may only invoke the function, dead-letter, and use the key")
    def _():
        role = f"{name}-scheduler"
        eq(iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"], [], "managed policies attached")
        doc = iam.get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"]
        eq(
            statements_by_sid(doc),
            {
                "InvokeProbe": {"actions": ["lambda:InvokeFunction"], "resources": [fn_arn], "condition": None},
                "DeadLetter": {"actions": ["sqs:SendMessage"], "resources": [dlq_arn], "condition": None},
                "UseModuleKey": {"actions": ["kms:Decrypt", "kms:GenerateDataKey"], "resources": [key], "condition": None},
            },
            "scheduler role policy",
        )
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        if isinstance(trust, str):
            trust = json.loads(trust)
        st = trust["Statement"][0]
        eq(st["Principal"], {"Service": "scheduler.amazonaws.com"}, "scheduler trust principal")
        eq(st["Condition"], {"StringEquals": {"aws:SourceAccount": account}}, "scheduler trust condition")

    @check("sns: topic encrypted with the module's key")
    def _():
        attrs = client("sns").get_topic_attributes(TopicArn=topic)["Attributes"]
        eq(attrs.get("KmsMasterKeyId"), key, "topic KmsMasterKeyId")

    @check("sns: e-mail subscription, SMS subscription filtered to service down/recovered")
    def _():
        sns = client("sns")
        subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        by_proto = {s["Protocol"]: s for s in subs}
        eq(sorted(by_proto), ["email", "sms"], "subscription protocols")
        eq(by_proto["email"]["Endpoint"], "ops@example.com", "e-mail endpoint")
        sms_attrs = sns.get_subscription_attributes(SubscriptionArn=by_proto["sms"]["SubscriptionArn"])["Attributes"]
        eq(
            json.loads(sms_attrs.get("FilterPolicy", "null")),
            {"status": ["down", "recovered"], "category": [{"anything-but": ["credentials"]}]},
            "SMS filter policy",
        )
        eq(sms_attrs.get("FilterPolicyScope", "MessageAttributes"), "MessageAttributes", "SMS filter scope")
        email_attrs = sns.get_subscription_attributes(SubscriptionArn=by_proto["email"]["SubscriptionArn"])["Attributes"]
        assert "FilterPolicy" not in email_attrs, "e-mail subscription must receive everything"

    @check("kms: key rotates; key policy lets CloudWatch alarms and the function use it")
    def _():
        kms = client("kms")
        eq(kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"], True, "rotation")
        pol = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
        sids = {s["Sid"]: s for s in pol["Statement"]}
        eq(sorted(sids), ["AccountAdministration", "CloudWatchAlarms", "CloudWatchLogs", "ProbeFunction"], "key policy statements")
        eq(sids["CloudWatchAlarms"]["Principal"], {"Service": "cloudwatch.amazonaws.com"}, "alarm principal")
        assert "kms:Decrypt" in as_list(sids["CloudWatchAlarms"]["Action"]), "alarms cannot decrypt"
        eq(sids["ProbeFunction"]["Principal"], {"AWS": out["function_role_arn"]}, "function principal")
        eq(sorted(as_list(sids["ProbeFunction"]["Action"])), ["kms:Decrypt", "kms:GenerateDataKey"], "function key actions")
        eq(
            sids["CloudWatchLogs"]["Condition"],
            {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
            "logs encryption context",
        )

    @check("dynamodb: key 'monitor' (S), on-demand, point-in-time recovery, module's key")
    def _():
        ddb = client("dynamodb")
        t = ddb.describe_table(TableName=table)["Table"]
        eq(t["KeySchema"], [{"AttributeName": "monitor", "KeyType": "HASH"}], "key schema")
        eq(t["AttributeDefinitions"], [{"AttributeName": "monitor", "AttributeType": "S"}], "attributes")
        eq(t["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST", "billing mode")
        eq(t.get("SSEDescription", {}).get("KMSMasterKeyArn"), key, "table key")
        pitr = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        eq(pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"], "ENABLED", "PITR")

    @check("secrets: config and account secrets exist, use the module's key, and hold no value from Terraform")
    def _():
        sm = client("secretsmanager")
        for arn in [secret] + account_secrets:
            d = sm.describe_secret(SecretId=arn)
            eq(d.get("KmsKeyId"), key, f"{d['Name']} key")
            assert not d.get("VersionIdsToStages"), f"{d['Name']} has a value; Terraform must not have put one"

    @check("alarms: metrics, thresholds, treat_missing_data and actions")
    def _():
        cw = client("cloudwatch")
        alarms = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNamePrefix=name + "-")["MetricAlarms"]}
        fn_dim = [{"Name": "FunctionName", "Value": name}]
        mon_dim = [{"Name": "Monitor", "Value": "mail-example-com"}]
        # name suffix: (namespace, metric, dimensions, statistic, comparison,
        #               threshold, evaluation periods, datapoints, missing data)
        want = {
            "heartbeat": ("Pop3Probe", "ProbeRuns", [], "Sum", "LessThanThreshold", 1, 3, 3, "breaching"),
            "lambda-errors": ("AWS/Lambda", "Errors", fn_dim, "Sum", "GreaterThanThreshold", 0, 1, None, "notBreaching"),
            "lambda-throttles": ("AWS/Lambda", "Throttles", fn_dim, "Sum", "GreaterThanThreshold", 0, 1, None, "notBreaching"),
            "lambda-duration": (
                "AWS/Lambda", "Duration", fn_dim, "Maximum", "GreaterThanThreshold", timeout * 1000 * 0.8, 1, None, "notBreaching",
            ),
            "monitors-down": ("Pop3Probe", "MonitorsDown", [], "Sum", "GreaterThanThreshold", 0, 1, None, "ignore"),
            "availability-mail-example-com": (
                "Pop3Probe", "Availability", mon_dim, "Minimum", "LessThanThreshold", 1, 3, 2, "missing",
            ),
            "responsetime-mail-example-com": (
                "Pop3Probe", "ResponseTime", mon_dim, "Maximum", "GreaterThanThreshold", 2000, 3, 2, "notBreaching",
            ),
        }
        eq(sorted(alarms), sorted(f"{name}-{k}" for k in want), "alarm names")
        eq(sorted(out["alarm_arns"]), sorted(alarms), "alarm_arns output")
        for suffix, (ns, metric, dims, stat, op, thr, evals, dps, missing) in want.items():
            a = alarms[f"{name}-{suffix}"]
            got = (
                a["Namespace"], a["MetricName"], a.get("Dimensions", []), a.get("Statistic"), a["ComparisonOperator"],
                a["Threshold"], a["EvaluationPeriods"], a.get("DatapointsToAlarm"), a.get("TreatMissingData"),
            )
            eq(got, (ns, metric, dims, stat, op, float(thr), evals, dps, missing), f"alarm {suffix}")
            eq(a["Period"], interval, f"alarm {suffix} period")
            eq(a["ActionsEnabled"], True, f"alarm {suffix} actions enabled")
            eq(a["AlarmActions"], [topic], f"alarm {suffix} alarm actions")
            eq(a["OKActions"], [topic], f"alarm {suffix} OK actions")

    @check("dashboard: per-monitor availability/response time, fleet counts, Lambda duration/errors")
    def _():
        body = json.loads(client("cloudwatch").get_dashboard(DashboardName=out["dashboard_name"])["DashboardBody"])
        text = json.dumps(body)
        for needle in ['MetricName=\\"Availability\\"', 'MetricName=\\"ResponseTime\\"', "MonitorsUp", "MonitorsDown",
                       "ProbeRuns", '"Duration"', '"Errors"', "{Pop3Probe,Monitor}"]:
            assert needle in text, f"dashboard lacks {needle}"


# ---------------------------------------------------------------------------
# phase: destroyed
# ---------------------------------------------------------------------------


def destroyed(args):
    name = args.name

    @check("destroy: no function, roles, log group, table, topic, queue left")
    def _():
        fns = [f["FunctionName"] for f in client("lambda").list_functions()["Functions"]]
        assert name not in fns, f"function left: {fns}"
        roles = [r["RoleName"] for r in client("iam").list_roles()["Roles"] if r["RoleName"].startswith(name + "-")]
        eq(roles, [], "roles")
        groups = client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
        eq(groups, [], "log groups")
        eq([t for t in client("dynamodb").list_tables()["TableNames"] if t.startswith(name)], [], "tables")
        eq([t["TopicArn"] for t in client("sns").list_topics()["Topics"] if f":{name}-" in t["TopicArn"]], [], "topics")
        eq(client("sns").list_subscriptions()["Subscriptions"], [], "subscriptions")
        eq([q for q in client("sqs").list_queues().get("QueueUrls", []) if f"/{name}-" in q], [], "queues")

    @check("destroy: no schedules, alarms, dashboard, secrets left; key pending deletion")
    def _():
        sch = client("scheduler")
        eq([g["Name"] for g in sch.list_schedule_groups()["ScheduleGroups"] if g["Name"] == name], [], "schedule groups")
        eq([s["Name"] for s in sch.list_schedules()["Schedules"] if s["Name"].startswith(name)], [], "schedules")
        cw = client("cloudwatch")
        eq([a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=name + "-")["MetricAlarms"]], [], "alarms")
        eq([d["DashboardName"] for d in cw.list_dashboards()["DashboardEntries"] if d["DashboardName"] == name], [], "dashboards")
        sm = client("secretsmanager")
        left = [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"] if s["Name"].startswith(name)]
        eq(left, [], "secrets")
        kms = client("kms")
        eq([a["AliasName"] for a in kms.list_aliases()["Aliases"] if a["AliasName"] == f"alias/{name}"], [], "key alias")
        # KMS never deletes a key at once; the module's key must be
        # scheduled for deletion, every other customer key untouched.
        for k in kms.list_keys()["Keys"]:
            meta = kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]
            if meta.get("KeyManager") == "CUSTOMER" and meta.get("Description", "").startswith(name + ":"):
                eq(meta["KeyState"], "PendingDeletion", "module key state")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", choices=["applied", "destroyed"])
    p.add_argument("--name", required=True)
    p.add_argument("--outputs", help="terraform output -json of examples/complete (phase applied)")
    p.add_argument("--shards", type=int, default=3)
    p.add_argument("--schedule", default="rate(5 minutes)")
    p.add_argument("--interval", type=int, default=300, help="schedule interval in seconds")
    p.add_argument("--timeout", type=int, default=50, help="function timeout in seconds")
    p.add_argument("--dump-policy", help="write the function role's policy document here")
    args = p.parse_args()
    if "AWS_ENDPOINT_URL" not in os.environ:
        sys.exit("AWS_ENDPOINT_URL must point at moto's server; refusing to touch real AWS")
    if args.phase == "applied":
        if not args.outputs:
            p.error("--outputs is required for phase applied")
        applied(args)
    else:
        destroyed(args)
    failed = sum(1 for _, ok in RESULTS if not ok)
    print(f"assert_stack {args.phase} done: {len(RESULTS) - failed} ok, {failed} failing", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
