# Created here, before the function, so that the function's role needs no
# logs:CreateLogGroup and the retention is ours, not "never expire". The name
# is Lambda's default (/aws/lambda/<function>), so no logging_config needed.
resource "aws_cloudwatch_log_group" "lambda" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 30 days). Probe logs are operational noise once the metrics (kept 15 months by CloudWatch) and alerts exist; a one-year floor would make every deployment pay for it.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}

locals {
  # The deployment artifact: a local zip (lambda_zip) or an object in S3.
  from_s3 = var.s3_bucket != null
}

resource "aws_lambda_function" "probe" {
  #checkov:skip=CKV_AWS_117:VPC placement is optional (vpc_subnet_ids, see examples/vpc): outside a VPC the function reaches mail servers on the internet without a NAT gateway (~$33/month, more than the whole deployment); it holds no inbound port and reaches AWS APIs over TLS with a least-privilege role.
  #checkov:skip=CKV_AWS_50:X-Ray tracing is the tracing_mode variable (default PassThrough): Active needs xray:PutTraceSegments on "*" (X-Ray has no resource-level permissions); the probe reports per-phase timings itself as metrics and logs.
  #checkov:skip=CKV_AWS_272:Code signing is optional (code_signing_config_arn): the zip is built by `make lambda` from this repository and deployed from the same checkout, so there is often no artifact hand-off for signing to protect.
  #checkov:skip=CKV_AWS_116:Scheduler invokes the function asynchronously with Lambda retries off (see aws_lambda_function_event_invoke_config): a probe run replayed minutes later measures nothing. Invocations that cannot be delivered go to the schedules' dead-letter queue (alarmed); failed runs raise the Errors and heartbeat alarms; on_failure_destination_arn adds an on-failure destination.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is the reserved_concurrency variable, unreserved by default: a reservation fails outright on accounts whose concurrency quota is still 10, and the Throttles alarm reports a shortage.
  function_name = local.function_name
  description   = "Mail-server probe (${var.shards} shard(s), ${var.schedule_expression})"
  role          = local.lambda_role_arn

  filename          = local.from_s3 ? null : var.lambda_zip
  source_code_hash  = local.from_s3 ? var.source_code_hash : filebase64sha256(var.lambda_zip)
  s3_bucket         = var.s3_bucket
  s3_key            = var.s3_key
  s3_object_version = var.s3_object_version
  runtime           = "provided.al2023"
  handler           = "bootstrap"
  architectures     = [var.architecture]
  publish           = var.publish

  code_signing_config_arn = var.code_signing_config_arn

  memory_size                    = var.memory_size
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = local.reserved_concurrency

  tracing_config {
    mode = var.tracing_mode
  }

  dynamic "vpc_config" {
    for_each = local.in_vpc ? [1] : []
    content {
      subnet_ids         = var.vpc_subnet_ids
      security_group_ids = local.vpc_security_group_ids
    }
  }

  # Names and ARNs only: the function reads credentials from Secrets
  # Manager at run time. Encrypted with the module's key all the same.
  kms_key_arn = local.kms_key_arn
  environment {
    variables = merge(
      {
        POP3_PROBE_CONFIG_SECRET = aws_secretsmanager_secret.config.arn
        POP3_PROBE_NAMESPACE     = local.metric_namespace
        POP3_PROBE_TOPIC_ARN     = local.alert_topic_arn
        POP3_PROBE_STATE_TABLE   = local.state_table_name
        # Lets the probe warn when a server's LOGIN-DELAY is longer than
        # this; also the default freshness window of the vantages (2x).
        POP3_PROBE_SCHEDULE_SECONDS = tostring(local.schedule_interval_seconds)
        RUST_LOG                    = var.rust_log
      },
      # Only when set: an empty POP3_PROBE_VANTAGE would mean the same as
      # none, but a single-region stack's environment should not mention
      # vantages at all (and stays unchanged for existing deployments).
      var.vantage == null ? {} : { POP3_PROBE_VANTAGE = var.vantage },
      var.state_table_region == null ? {} : { POP3_PROBE_STATE_REGION = var.state_table_region },
    )
  }

  tags = local.tags

  depends_on = [
    aws_cloudwatch_log_group.lambda,
    aws_iam_role_policy.lambda,
  ]
}

# publish = true: every deployment is a new version, and the schedules
# invoke this alias, so a rollback is moving the alias.
resource "aws_lambda_alias" "probe" {
  count = var.publish ? 1 : 0

  name             = var.alias_name
  function_name    = aws_lambda_function.probe.function_name
  function_version = aws_lambda_function.probe.version
}

locals {
  invoke_arn_target = var.publish ? aws_lambda_alias.probe[0].arn : aws_lambda_function.probe.arn
}

# EventBridge Scheduler invokes asynchronously. A failed probe run is not
# worth repeating: the next tick comes within one interval, and a retry
# would overlap it and log in to the same mailboxes twice.
resource "aws_lambda_function_event_invoke_config" "probe" {
  function_name                = aws_lambda_function.probe.function_name
  qualifier                    = var.publish ? aws_lambda_alias.probe[0].name : null
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = local.max_event_age_seconds

  dynamic "destination_config" {
    for_each = var.on_failure_destination_arn == null ? [] : [var.on_failure_destination_arn]
    content {
      on_failure {
        destination = destination_config.value
      }
    }
  }
}

# ---------------------------------------------------------------------------
# VPC placement (vpc_subnet_ids). Without vpc_security_group_ids the module
# creates a group that allows no inbound traffic and outbound only to the
# mail ports and 443 (AWS APIs, OAuth2 token endpoints). The function then
# needs a NAT gateway or interface endpoints: see README, "In a VPC".
# ---------------------------------------------------------------------------

data "aws_subnet" "first" {
  count = local.in_vpc && length(var.vpc_security_group_ids) == 0 ? 1 : 0
  id    = var.vpc_subnet_ids[0]
}

resource "aws_security_group" "probe" {
  #checkov:skip=CKV2_AWS_5:Attached to the function (vpc_config), which checkov does not follow through local.vpc_security_group_ids.
  count = local.in_vpc && length(var.vpc_security_group_ids) == 0 ? 1 : 0

  name        = "${var.name}-probe"
  description = "${var.name} mail probe: no inbound, outbound to mail ports and HTTPS"
  vpc_id      = data.aws_subnet.first[0].vpc_id
  tags        = local.tags
}

resource "aws_vpc_security_group_egress_rule" "probe" {
  #checkov:skip=CKV_AWS_382:The probe connects to the mail servers it monitors, wherever they are (var.vpc_egress_cidrs narrows the destinations); the ports are only the mail ports and 443.
  for_each = length(aws_security_group.probe) == 0 ? {} : {
    for p in setproduct(var.vpc_egress_ports, var.vpc_egress_cidrs) : "${p[0]}-${p[1]}" => { port = p[0], cidr = p[1] }
  }

  security_group_id = aws_security_group.probe[0].id
  description       = "Outbound TCP ${each.value.port}"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
  tags              = local.tags
}

locals {
  vpc_security_group_ids = length(var.vpc_security_group_ids) > 0 ? var.vpc_security_group_ids : aws_security_group.probe[*].id
}
