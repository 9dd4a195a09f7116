# Created here, before the function, so that the function's role needs no
# logs:CreateLogGroup and the retention is ours, not "never expire". The name
# is Lambda's default (/aws/lambda/<function>), so no logging_config needed.
resource "aws_cloudwatch_log_group" "lambda" {
  #checkov:skip=CKV_AWS_338:Retention is the log_retention_days variable (default 30 days). Probe logs are operational noise once the metrics (kept 15 months by CloudWatch) and alerts exist; a one-year floor would make every deployment pay for it.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = local.tags
}

resource "aws_lambda_function" "probe" {
  #checkov:skip=CKV_AWS_117:The probe must reach mail servers on the internet. In a VPC that needs a NAT gateway (~$33/month, more than the whole deployment) for no gain: the function holds no inbound port and reaches AWS APIs over TLS with a least-privilege role.
  #checkov:skip=CKV_AWS_50:X-Ray would need xray:PutTraceSegments on "*" (X-Ray has no resource-level permissions), breaking the role's exact-actions contract; the probe reports per-phase timings itself as metrics and logs.
  #checkov:skip=CKV_AWS_272:The zip is built by `make lambda` from this repository and deployed by Terraform from the same checkout; there is no artifact hand-off for code signing to protect.
  #checkov:skip=CKV_AWS_116:Scheduler invokes the function asynchronously with Lambda retries off (see aws_lambda_function_event_invoke_config): a probe run replayed minutes later measures nothing. Invocations that cannot be delivered go to the schedules' dead-letter queue; failed runs raise the Errors and heartbeat alarms.
  function_name = local.function_name
  description   = "POP3 mail-server probe (${var.shards} shard(s), ${var.schedule_expression})"
  role          = aws_iam_role.lambda.arn

  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]

  memory_size                    = var.memory_size
  timeout                        = var.timeout_seconds
  reserved_concurrent_executions = local.reserved_concurrency

  # Names and ARNs only: the function reads credentials from Secrets
  # Manager at run time. Encrypted with the module's key all the same.
  kms_key_arn = aws_kms_key.this.arn
  environment {
    variables = {
      POP3_PROBE_CONFIG_SECRET = aws_secretsmanager_secret.config.arn
      POP3_PROBE_NAMESPACE     = var.metric_namespace
      POP3_PROBE_TOPIC_ARN     = aws_sns_topic.alerts.arn
      POP3_PROBE_STATE_TABLE   = aws_dynamodb_table.state.name
      # Lets the probe warn when a server's LOGIN-DELAY is longer than this.
      POP3_PROBE_SCHEDULE_SECONDS = tostring(local.schedule_interval_seconds)
      RUST_LOG                    = var.rust_log
    }
  }

  tags = local.tags

  depends_on = [
    aws_cloudwatch_log_group.lambda,
    aws_iam_role_policy.lambda,
  ]
}

# EventBridge Scheduler invokes asynchronously. A failed probe run is not
# worth repeating: the next tick comes within one interval, and a retry
# would overlap it and log in to the same mailboxes twice.
resource "aws_lambda_function_event_invoke_config" "probe" {
  function_name                = aws_lambda_function.probe.function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = local.schedule_interval_seconds
}
