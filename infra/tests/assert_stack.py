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
    role_prefix = f"{name}-{region}-"
    namespace = f"Pop3Probe/{name}"
    alarm_topic = out["alarm_topic_arn"]
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
                "POP3_PROBE_NAMESPACE": namespace,
                "POP3_PROBE_TOPIC_ARN": topic,
                "POP3_PROBE_STATE_TABLE": table,
                "RUST_LOG": "info",
                # The example's schedule: rate(5 minutes).
                "POP3_PROBE_SCHEDULE_SECONDS": "300",
            },
            "environment",
        )

    @check("lambda: unreserved concurrency by default, async retries off")
    def _():
        conc = lam.get_function_concurrency(FunctionName=name)
        eq(conc.get("ReservedConcurrentExecutions"), None, "reserved concurrency")
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
            eq(t["RoleArn"], out["scheduler_role_arn"], f"shard {i} role")
            eq(t["RoleArn"].split("/")[-1], f"{role_prefix}scheduler", f"shard {i} role name")
            eq(s.get("KmsKeyArn"), key, f"shard {i} key")

    @check("dlq: encrypted with the module's key, writable only by the scheduler role")
    def _():
        attrs = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
        eq(attrs.get("KmsMasterKeyId"), key, "queue key")
        pol = statements_by_sid(attrs["Policy"])
        eq(list(pol), ["SchedulerDeadLetter"], "queue policy statements")
        eq(pol["SchedulerDeadLetter"]["actions"], ["sqs:SendMessage"], "queue policy actions")

    @check("iam: both roles region-safe by name, under the path, with the permissions boundary")
    def _():
        for suffix in ("lambda", "scheduler"):
            r = iam.get_role(RoleName=f"{role_prefix}{suffix}")["Role"]
            eq(r["Path"], args.role_path, f"{suffix} role path")
            eq(r.get("PermissionsBoundary", {}).get("PermissionsBoundaryArn"), args.boundary, f"{suffix} role boundary")
            eq(r.get("PermissionsBoundary", {}).get("PermissionsBoundaryType"), "PermissionsBoundaryPolicy", f"{suffix} boundary type")
        eq(out["function_role_arn"], f"arn:aws:iam::{account}:role{args.role_path}{role_prefix}lambda", "function role ARN")

    @check("iam: function role has exactly the intended actions on the intended resources")
    def _():
        role = f"{role_prefix}lambda"
        eq(iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"], [], "managed policies attached")
        eq(iam.list_role_policies(RoleName=role)["PolicyNames"], [f"{name}-lambda"], "inline policies")
        doc = iam.get_role_policy(RoleName=role, PolicyName=f"{name}-lambda")["PolicyDocument"]
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
                "condition": {"StringEquals": {"cloudwatch:namespace": namespace}},
            },
            "PublishAlerts": {"actions": ["sns:Publish"], "resources": [topic], "condition": None},
            # State reads, and the conditional puts of the state save and
            # of the vantage store (src/vantage.rs).
            "AlertState": {
                "actions": ["dynamodb:BatchGetItem", "dynamodb:PutItem"],
                "resources": [table_arn],
                "condition": None,
            },
            "UseKeys": {"actions": ["kms:Decrypt", "kms:GenerateDataKey"], "resources": [key], "condition": None},
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
        role = f"{role_prefix}scheduler"
        eq(iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"], [], "managed policies attached")
        doc = iam.get_role_policy(RoleName=role, PolicyName=f"{name}-scheduler")["PolicyDocument"]
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

    @check("sns: alert and alarm topics, both encrypted with the module's key")
    def _():
        for arn, suffix in ((topic, "alerts"), (alarm_topic, "alarms")):
            eq(arn, f"arn:aws:sns:{region}:{account}:{name}-{suffix}", f"{suffix} topic ARN")
            attrs = client("sns").get_topic_attributes(TopicArn=arn)["Attributes"]
            eq(attrs.get("KmsMasterKeyId"), key, f"{suffix} topic KmsMasterKeyId")

    @check("sns: e-mail on both topics unfiltered; SMS filtered by attributes (alerts) and by body (alarms)")
    def _():
        sns = client("sns")
        for arn, scope, policy in (
            (topic, "MessageAttributes", {
                "status": ["down", "recovered", "probe_error"],
                "category": [{"anything-but": ["credentials"]}],
            }),
            (alarm_topic, "MessageBody", {
                "AlarmName": [{"prefix": f"{name}-heartbeat"}],
                "NewStateValue": ["ALARM", "OK"],
            }),
        ):
            subs = sns.list_subscriptions_by_topic(TopicArn=arn)["Subscriptions"]
            by_proto = {s["Protocol"]: s for s in subs}
            eq(sorted(by_proto), ["email", "sms"], f"{arn} subscription protocols")
            eq(by_proto["email"]["Endpoint"], "ops@example.com", "e-mail endpoint")
            sms_attrs = sns.get_subscription_attributes(SubscriptionArn=by_proto["sms"]["SubscriptionArn"])["Attributes"]
            eq(json.loads(sms_attrs.get("FilterPolicy", "null")), policy, f"{arn} SMS filter policy")
            eq(sms_attrs.get("FilterPolicyScope", "MessageAttributes"), scope, f"{arn} SMS filter scope")
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
        dlq_dim = [{"Name": "QueueName", "Value": f"{name}-schedule-dlq"}]
        mon_dim = [{"Name": "Monitor", "Value": "mail-example-com"}]
        # name suffix: (namespace, metric, dimensions, statistic, comparison,
        #               threshold, evaluation periods, datapoints, missing data)
        want = {
            **{
                f"heartbeat-shard-{i}": (
                    namespace, "ProbeRuns", [{"Name": "Shard", "Value": str(i)}], "Sum", "LessThanThreshold", 1, 3, 3, "breaching",
                )
                for i in range(args.shards)
            },
            "alerts-failed": (namespace, "AlertsFailed", [], "Maximum", "GreaterThanThreshold", 0, 1, 1, "notBreaching"),
            "metrics-pending": (namespace, "MetricsPending", [], "Maximum", "GreaterThanThreshold", 0, 3, 3, "notBreaching"),
            "monitors-skipped": (namespace, "MonitorsSkipped", [], "Maximum", "GreaterThanThreshold", 0, 1, 1, "notBreaching"),
            "monitors-misconfigured": (
                namespace, "MonitorsMisconfigured", [], "Maximum", "GreaterThanThreshold", 0, 1, 1, "notBreaching",
            ),
            "dead-letters": (
                "AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq_dim, "Maximum", "GreaterThanThreshold", 0, 1, None, "notBreaching",
            ),
            "lambda-errors": ("AWS/Lambda", "Errors", fn_dim, "Sum", "GreaterThanThreshold", 0, 1, None, "notBreaching"),
            "lambda-throttles": ("AWS/Lambda", "Throttles", fn_dim, "Sum", "GreaterThanThreshold", 0, 1, None, "notBreaching"),
            "lambda-duration": (
                "AWS/Lambda", "Duration", fn_dim, "Maximum", "GreaterThanThreshold", timeout * 1000 * 0.8, 1, None, "notBreaching",
            ),
            "monitors-down": (namespace, "MonitorsDown", [], "Sum", "GreaterThanThreshold", 0, 1, None, "ignore"),
            "availability-mail-example-com": (
                namespace, "Availability", mon_dim, "Minimum", "LessThanThreshold", 1, 3, 2, "missing",
            ),
            "responsetime-mail-example-com": (
                namespace, "ResponseTime", mon_dim, "Maximum", "GreaterThanThreshold", 2000, 3, 2, "notBreaching",
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
            eq(a["Period"], min(interval, 3600) if suffix == "dead-letters" else interval, f"alarm {suffix} period")
            eq(a["ActionsEnabled"], True, f"alarm {suffix} actions enabled")
            eq(a["AlarmActions"], [alarm_topic], f"alarm {suffix} alarm actions")
            eq(a["OKActions"], [alarm_topic], f"alarm {suffix} OK actions")

    @check("dashboard: per-monitor availability/response time, fleet counts, Lambda duration/errors")
    def _():
        body = json.loads(client("cloudwatch").get_dashboard(DashboardName=out["dashboard_name"])["DashboardBody"])
        text = json.dumps(body)
        for needle in ['MetricName=\\"Availability\\"', 'MetricName=\\"ResponseTime\\"', "MonitorsUp", "MonitorsDown",
                       "ProbeRuns", '"Duration"', '"Errors"', "{" + namespace + ",Monitor}", "{" + namespace + ",Shard}"]:
            assert needle in text, f"dashboard lacks {needle}"


# ---------------------------------------------------------------------------
# phase: sms -- the SMS filters replayed against real messages
# ---------------------------------------------------------------------------


def alarm_body(alarm, new, old):
    """A CloudWatch alarm notification as CloudWatch publishes it to SNS
    (abridged: the fields a filter can see are all there)."""
    return json.dumps({
        "AlarmName": alarm,
        "AlarmDescription": "test",
        "AWSAccountId": "123456789012",
        "NewStateValue": new,
        "NewStateReason": "Threshold Crossed: 3 datapoints were less than the threshold (1.0).",
        "StateChangeTime": "2026-01-01T00:00:00.000+0000",
        "Region": "EU (Ireland)",
        "AlarmArn": f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{alarm}",
        "OldStateValue": old,
        "Trigger": {"MetricName": "ProbeRuns", "Namespace": "Pop3Probe/x", "Statistic": "SUM", "Period": 300},
    })


def probe_message(tag, status, category):
    """A probe alert as src/aws.rs publishes it: MessageStructure json and
    the severity/monitor/status/category/cause attributes."""
    def attr(v):
        return {"DataType": "String", "StringValue": v}
    text = f"{tag} {status} mail-example-com"
    return dict(
        MessageStructure="json",
        Message=json.dumps({"default": text, "sms": text, "email": text}),
        Subject=f"[{status.upper()}] mail-example-com",
        MessageAttributes={
            "severity": attr("critical"),
            "monitor": attr("mail-example-com"),
            "status": attr(status),
            "category": attr(category),
            "cause": attr("none"),
        },
    )


def sms(args):
    """Subscribe an SQS queue to each topic with the filter policy (and
    scope) of that topic's SMS subscription, publish what the probe and
    CloudWatch publish, and compare what got through with what on-call
    must (and must not) be texted."""
    out = {k: v["value"] for k, v in json.load(open(args.outputs)).items()}
    name = args.name
    sns = client("sns")
    sqs = client("sqs")

    def sms_sub(topic):
        subs = [s for s in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] if s["Protocol"] == "sms"]
        assert subs, f"no SMS subscription on {topic}"
        return sns.get_subscription_attributes(SubscriptionArn=subs[0]["SubscriptionArn"])["Attributes"]

    queue = sqs.create_queue(QueueName=f"{name}-sms-replay")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    replay_subs = []
    for topic in (out["topic_arn"], out["alarm_topic_arn"]):
        attrs = sms_sub(topic)
        sub_attrs = {"RawMessageDelivery": "true"}
        if attrs.get("FilterPolicy"):
            sub_attrs["FilterPolicy"] = attrs["FilterPolicy"]
            sub_attrs["FilterPolicyScope"] = attrs.get("FilterPolicyScope", "MessageAttributes")
        replay_subs.append(sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes=sub_attrs,
                                         ReturnSubscriptionArn=True)["SubscriptionArn"])

    hb = f"{name}-heartbeat-shard-1"
    # tag -> (topic, publish kwargs, must reach SMS)
    cases = {
        "service-down": ("alerts", probe_message("service-down", "down", "service"), True),
        "service-recovered": ("alerts", probe_message("service-recovered", "recovered", "service"), True),
        "probe-error": ("alerts", probe_message("probe-error", "probe_error", "probe"), True),
        "credentials-down": ("alerts", probe_message("credentials-down", "down", "credentials"), False),
        # The recovery of the outage above, which was held back: must be too.
        "credentials-recovered": ("alerts", probe_message("credentials-recovered", "recovered", "credentials"), False),
        "degraded": ("alerts", probe_message("degraded", "degraded", "service"), False),
        "still-down": ("alerts", probe_message("still-down", "still_down", "service"), False),
        "heartbeat-alarm": ("alarms", {"Message": alarm_body(hb, "ALARM", "OK")}, True),
        "heartbeat-ok-after-alarm": ("alarms", {"Message": alarm_body(hb, "OK", "ALARM")}, True),
        "heartbeat-alarm-from-insufficient": ("alarms", {"Message": alarm_body(hb, "ALARM", "INSUFFICIENT_DATA")}, True),
        "heartbeat-insufficient": ("alarms", {"Message": alarm_body(hb, "INSUFFICIENT_DATA", "OK")}, False),
        "errors-alarm": ("alarms", {"Message": alarm_body(f"{name}-lambda-errors", "ALARM", "OK")}, False),
        "errors-ok": ("alarms", {"Message": alarm_body(f"{name}-lambda-errors", "OK", "ALARM")}, False),
    }
    topics = {"alerts": out["topic_arn"], "alarms": out["alarm_topic_arn"]}
    for tag, (topic, kwargs, _) in cases.items():
        if topic == "alarms":
            # Alarm bodies carry no tag of their own; a message attribute
            # does not take part in a MessageBody-scoped filter.
            kwargs = dict(kwargs, MessageAttributes={"tag": {"DataType": "String", "StringValue": tag}})
        sns.publish(TopicArn=topics[topic], **kwargs)

    got = set()
    for _ in range(20):
        msgs = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                   WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            tag = m.get("MessageAttributes", {}).get("tag", {}).get("StringValue") or m["Body"].split(" ")[0]
            got.add(tag)
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    for tag, (_, _, want) in cases.items():
        @check(f"sms filter: {tag} {'reaches' if want else 'does not reach'} SMS")
        def _():
            eq(tag in got, want, f"{tag} delivered")

    @check("sms filter: nothing delivered that was not published")
    def _():
        eq(sorted(got - set(cases)), [], "unexpected deliveries")

    for arn in replay_subs:
        sns.unsubscribe(SubscriptionArn=arn)
    sqs.delete_queue(QueueUrl=queue)


# ---------------------------------------------------------------------------
# phase: vpc -- examples/vpc
# ---------------------------------------------------------------------------


def vpc(args):
    out = {k: v["value"] for k, v in json.load(open(args.outputs)).items()}
    name = args.name
    region = os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")
    fixtures = json.load(open(args.fixtures))
    subnets = sorted(fixtures["vpc_subnet_ids"])
    sg = out["security_group_id"]
    ec2 = client("ec2")
    account = out["function_role_arn"].split(":")[4]

    @check("vpc: function placed in the given subnets with the module's security group")
    def _():
        cfg = client("lambda").get_function(FunctionName=name)["Configuration"]["VpcConfig"]
        eq(sorted(cfg["SubnetIds"]), subnets, "subnets")
        eq(cfg["SecurityGroupIds"], [sg], "security groups")
        # (moto reports a fixed VpcId in VpcConfig; the group's VPC is real.)
        vpc_id = ec2.describe_subnets(SubnetIds=subnets[:1])["Subnets"][0]["VpcId"]
        eq(ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]["VpcId"], vpc_id, "security group VPC")

    @check("vpc: security group has no inbound rule, outbound TCP to the mail ports and 443 only")
    def _():
        g = ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"][0]
        eq(g["IpPermissions"], [], "inbound rules")
        got = sorted(
            (p["IpProtocol"], p["FromPort"], p["ToPort"], tuple(sorted(r["CidrIp"] for r in p.get("IpRanges", []))))
            for p in g["IpPermissionsEgress"]
        )
        want = sorted(("tcp", port, port, ("10.0.0.0/8",)) for port in (25, 110, 443, 465, 587, 995))
        eq(got, want, "outbound rules")

    @check("vpc: function role may manage network interfaces only in those subnets, with that group")
    def _():
        iam = client("iam")
        role = f"{name}-{region}-lambda"
        got = statements_by_sid(iam.get_role_policy(RoleName=role, PolicyName=f"{name}-lambda")["PolicyDocument"])
        eni = f"arn:aws:ec2:{region}:{account}:network-interface/*"
        eq(got.get("VpcCreateInterfaces"), {
            "actions": ["ec2:CreateNetworkInterface"],
            "resources": sorted([eni] + [f"arn:aws:ec2:{region}:{account}:subnet/{s}" for s in subnets]
                                + [f"arn:aws:ec2:{region}:{account}:security-group/{sg}"]),
            "condition": None,
        }, "VpcCreateInterfaces")
        eq(got.get("VpcManageInterfaces"), {
            "actions": ["ec2:AssignPrivateIpAddresses", "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses"],
            "resources": [eni],
            "condition": None,
        }, "VpcManageInterfaces")
        eq(got.get("VpcDescribe"), {
            "actions": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], "resources": ["*"], "condition": None,
        }, "VpcDescribe")


# ---------------------------------------------------------------------------
# phase: existing -- examples/existing-resources
# ---------------------------------------------------------------------------


def existing(args):
    out = {k: v["value"] for k, v in json.load(open(args.outputs)).items()}
    name = args.name
    fx = json.load(open(args.fixtures))
    lam = client("lambda")

    @check("existing: function runs as the given role, publishes to the given topic, encrypts with the given key")
    def _():
        cfg = lam.get_function(FunctionName=name)["Configuration"]
        eq(cfg["Role"], fx["lambda_role_arn"], "function role")
        eq(cfg["Environment"]["Variables"]["POP3_PROBE_TOPIC_ARN"], fx["alert_topic_arn"], "topic")
        eq(cfg.get("KMSKeyArn", fx["kms_key_arn"]), fx["kms_key_arn"], "environment key")
        groups = client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
        eq([g.get("kmsKeyId") for g in groups], [fx["kms_key_arn"]], "log group key")

    @check("existing: the module created no role, key or topic of its own")
    def _():
        roles = [r["RoleName"] for r in client("iam").list_roles()["Roles"] if r["RoleName"].startswith(name + "-")]
        eq(roles, [], "module roles")
        topics = [t["TopicArn"] for t in client("sns").list_topics()["Topics"] if f":{name}-" in t["TopicArn"]]
        eq(topics, [], "module topics")
        kms = client("kms")
        own = [k["KeyId"] for k in kms.list_keys()["Keys"]
               if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"].get("Description", "").startswith(name + ":")]
        eq(own, [], "module keys")

    @check("existing: schedules use the given scheduler role; alarms notify the pager on ALARM and OK")
    def _():
        sch = client("scheduler")
        for s in sch.list_schedules(GroupName=name)["Schedules"]:
            t = sch.get_schedule(Name=s["Name"], GroupName=name)["Target"]
            eq(t["RoleArn"], fx["scheduler_role_arn"], f"{s['Name']} role")
        alarms = client("cloudwatch").describe_alarms(AlarmNamePrefix=name + "-")["MetricAlarms"]
        assert alarms, "no alarms"
        for a in alarms:
            eq(a["AlarmActions"], [fx["pager_topic_arn"]], f"{a['AlarmName']} alarm actions")
            eq(a["OKActions"], [fx["pager_topic_arn"]], f"{a['AlarmName']} OK actions")

    @check("existing: state table and secret use the given key; policy outputs name the given resources")
    def _():
        t = client("dynamodb").describe_table(TableName=f"{name}-state")["Table"]
        eq(t.get("SSEDescription", {}).get("KMSMasterKeyArn"), fx["kms_key_arn"], "table key")
        d = client("secretsmanager").describe_secret(SecretId=out["config_secret_arn"])
        eq(d.get("KmsKeyId"), fx["kms_key_arn"], "secret key")
        pol = statements_by_sid(out["lambda_role_policy_json"])
        eq(pol["PublishAlerts"]["resources"], [fx["alert_topic_arn"]], "policy topic")
        eq(pol["UseKeys"]["resources"], [fx["kms_key_arn"]], "policy key")


# ---------------------------------------------------------------------------
# phase: sidebyside -- several applies of examples/minimal in one account
# ---------------------------------------------------------------------------


def sidebyside(args):
    stacks = []
    for spec in args.stack:
        region, name, path = spec.split(":", 2)
        stacks.append((region, name, {k: v["value"] for k, v in json.load(open(path)).items()}))

    for region, name, out in stacks:
        @check(f"side by side: {name} in {region} runs with its own role, namespace, secret, table and dashboard")
        def _():
            lam = boto3.client("lambda", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=region)
            cfg = lam.get_function(FunctionName=name)["Configuration"]
            eq(cfg["Role"], out["function_role_arn"], "role")
            env = cfg["Environment"]["Variables"]
            eq(env["POP3_PROBE_NAMESPACE"], f"Pop3Probe/{name}", "namespace")
            eq(env["POP3_PROBE_CONFIG_SECRET"], out["config_secret_arn"], "config secret")
            eq(env["POP3_PROBE_STATE_TABLE"], f"{name}-state", "table")
            assert f":{region}:" in out["config_secret_arn"], "secret in its region"
            eq(out["dashboard_name"], f"{name}-{region}", "dashboard")

    @check("side by side: no two stacks share a role, scheduler role, namespace+region, or dashboard")
    def _():
        for key in ("function_role_arn", "scheduler_role_arn", "dashboard_name"):
            vals = [out[key] for _, _, out in stacks]
            eq(len(set(vals)), len(vals), f"distinct {key}")
        ns = [(region, out["metric_namespace"]) for region, _, out in stacks]
        eq(len(set(ns)), len(ns), "distinct namespace per region")


# ---------------------------------------------------------------------------
# phase: destroyed
# ---------------------------------------------------------------------------


def destroyed(args):
    name = args.name
    region = os.environ.get("AWS_DEFAULT_REGION", "eu-west-1")

    @check("destroy: no function, roles, log group, table, topics, subscriptions, queue, security group left")
    def _():
        fns = [f["FunctionName"] for f in client("lambda").list_functions()["Functions"]]
        assert name not in fns, f"function left: {fns}"
        # IAM is global: only this region's roles (the same name may run elsewhere).
        roles = [r["RoleName"] for r in client("iam").list_roles()["Roles"] if r["RoleName"].startswith(f"{name}-{region}-")]
        eq(roles, [], "roles")
        groups = client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"]
        eq(groups, [], "log groups")
        eq([t for t in client("dynamodb").list_tables()["TableNames"] if t.startswith(name)], [], "tables")
        eq([t["TopicArn"] for t in client("sns").list_topics()["Topics"] if f":{name}-" in t["TopicArn"]], [], "topics")
        subs = [s["SubscriptionArn"] for s in client("sns").list_subscriptions()["Subscriptions"] if f":{name}-" in s["TopicArn"]]
        eq(subs, [], "subscriptions")
        sgs = client("ec2").describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{name}-probe"]}])["SecurityGroups"]
        eq([g["GroupId"] for g in sgs], [], "security groups")
        eq([q for q in client("sqs").list_queues().get("QueueUrls", []) if f"/{name}-" in q], [], "queues")

    @check("destroy: no schedules, alarms, dashboard, secrets left; key pending deletion")
    def _():
        sch = client("scheduler")
        eq([g["Name"] for g in sch.list_schedule_groups()["ScheduleGroups"] if g["Name"] == name], [], "schedule groups")
        eq([s["Name"] for s in sch.list_schedules()["Schedules"] if s["Name"].startswith(name)], [], "schedules")
        cw = client("cloudwatch")
        eq([a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=name + "-")["MetricAlarms"]], [], "alarms")
        eq([d["DashboardName"] for d in cw.list_dashboards()["DashboardEntries"] if d["DashboardName"] == f"{name}-{region}"], [], "dashboards")
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
    p.add_argument("phase", choices=["applied", "sms", "vpc", "existing", "sidebyside", "destroyed"])
    p.add_argument("--name", required=True)
    p.add_argument("--outputs", help="terraform output -json of examples/complete (phase applied)")
    p.add_argument("--shards", type=int, default=3)
    p.add_argument("--schedule", default="rate(5 minutes)")
    p.add_argument("--interval", type=int, default=300, help="schedule interval in seconds")
    p.add_argument("--timeout", type=int, default=50, help="function timeout in seconds")
    p.add_argument("--dump-policy", help="write the function role's policy document here")
    p.add_argument("--fixtures", help="moto_fixtures.py output the example was applied with (vpc, existing)")
    p.add_argument("--stack", action="append", default=[], help="REGION:NAME:OUTPUTS.json (sidebyside; repeat)")
    p.add_argument("--role-path", default="/", help="expected IAM path of the roles")
    p.add_argument("--boundary", help="expected permissions boundary ARN of the roles")
    args = p.parse_args()
    if "AWS_ENDPOINT_URL" not in os.environ:
        sys.exit("AWS_ENDPOINT_URL must point at moto's server; refusing to touch real AWS")
    if args.phase in ("applied", "sms"):
        if not args.outputs:
            p.error(f"--outputs is required for phase {args.phase}")
        (applied if args.phase == "applied" else sms)(args)
    elif args.phase in ("vpc", "existing"):
        if not args.outputs or not args.fixtures:
            p.error(f"--outputs and --fixtures are required for phase {args.phase}")
        (vpc if args.phase == "vpc" else existing)(args)
    elif args.phase == "sidebyside":
        sidebyside(args)
    else:
        destroyed(args)
    failed = sum(1 for _, ok in RESULTS if not ok)
    print(f"assert_stack {args.phase} done: {len(RESULTS) - failed} ok, {failed} failing", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
