# ---------------------------------------------------------------------------
# The function's role: exactly the API calls the Rust code makes, each on the
# narrowest resource AWS allows. tests/policy_vs_code.py keeps this list and
# src/ in step.
#
# create_role = false: the roles are the platform team's (lambda_role_arn,
# scheduler_role_arn). The module then creates no IAM at all; the outputs
# lambda_role_policy_json and scheduler_role_policy_json are what those roles
# need.
# ---------------------------------------------------------------------------

locals {
  lambda_role_arn    = var.create_role ? aws_iam_role.lambda[0].arn : var.lambda_role_arn
  scheduler_role_arn = var.create_role ? aws_iam_role.scheduler[0].arn : var.scheduler_role_arn

  in_vpc = length(var.vpc_subnet_ids) > 0
}

resource "aws_iam_role" "lambda" {
  count = var.create_role ? 1 : 0

  name                 = "${local.role_name_prefix}lambda"
  path                 = var.role_path
  permissions_boundary = var.role_permissions_boundary
  description          = "Execution role of the ${var.name} mail probe function (${local.region})"
  assume_role_policy   = data.aws_iam_policy_document.lambda_assume.json
  max_session_duration = 3600
  tags                 = local.tags
}

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  count = var.create_role ? 1 : 0

  name   = "${var.name}-lambda"
  role   = aws_iam_role.lambda[0].id
  policy = data.aws_iam_policy_document.lambda.json
}

data "aws_iam_policy_document" "lambda" {
  # Config secret, per-account secrets, and the listed existing ones.
  statement {
    sid       = "ReadProbeSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.readable_secret_arns
  }

  # PutMetricData has no resource-level permissions; the namespace
  # condition is the narrowest scope AWS offers.
  statement {
    sid       = "PublishProbeMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [local.metric_namespace]
    }
  }

  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [local.alert_topic_arn]
  }

  # State is read in batches (BatchGetItem) and saved with one PutItem per
  # changed state, each conditional on the version it follows (a batch
  # write cannot be conditional). The vantage store (src/vantage.rs:
  # heartbeats, verdicts, the version-conditional consensus items) makes
  # PutItems on the same table.
  statement {
    sid       = "AlertState"
    actions   = ["dynamodb:BatchGetItem", "dynamodb:PutItem"]
    resources = [local.state_table_arn]
  }

  # Publishing to the SSE topic needs a data key; reading the secrets needs
  # Decrypt. Only the module's key (or kms_key_arn) and extra_kms_key_arns.
  statement {
    sid       = "UseKeys"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = local.readable_key_arns
  }

  # The Lambda runtime writes the function's logs. The group exists
  # already (lambda.tf), so no logs:CreateLogGroup.
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arn}:*"]
  }

  # In a VPC, Lambda creates and removes the function's network interfaces
  # with the function's role (what AWSLambdaVPCAccessExecutionRole grants,
  # narrowed): creation only in the given subnets with the given groups,
  # the rest on network interfaces of this account and region. The
  # Describe calls have no resource-level permissions.
  dynamic "statement" {
    for_each = local.in_vpc ? [1] : []
    content {
      sid     = "VpcCreateInterfaces"
      actions = ["ec2:CreateNetworkInterface"]
      resources = concat(
        ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"],
        [for s in var.vpc_subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${s}"],
        [for g in local.vpc_security_group_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/${g}"],
      )
    }
  }
  dynamic "statement" {
    for_each = local.in_vpc ? [1] : []
    content {
      sid       = "VpcManageInterfaces"
      actions   = ["ec2:AssignPrivateIpAddresses", "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses"]
      resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"]
    }
  }
  dynamic "statement" {
    for_each = local.in_vpc ? [1] : []
    content {
      sid       = "VpcDescribe"
      actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
      resources = ["*"]
    }
  }

  # X-Ray has no resource-level permissions: only when tracing is Active.
  dynamic "statement" {
    for_each = var.tracing_mode == "Active" ? [1] : []
    content {
      sid       = "Tracing"
      actions   = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
      resources = ["*"]
    }
  }

  # An asynchronous invocation that failed is sent here (on_failure_destination_arn).
  dynamic "statement" {
    for_each = var.on_failure_destination_arn == null ? [] : [var.on_failure_destination_arn]
    content {
      sid       = "OnFailureDestination"
      actions   = [startswith(split(":", statement.value)[2], "sqs") ? "sqs:SendMessage" : "sns:Publish"]
      resources = [statement.value]
    }
  }
}

# ---------------------------------------------------------------------------
# EventBridge Scheduler's role: a schedule cannot invoke a target without
# one. It may invoke this function, dead-letter to this queue, and use the
# module's key (schedules and queue are encrypted with it). Nothing else.
# ---------------------------------------------------------------------------

resource "aws_iam_role" "scheduler" {
  count = var.create_role ? 1 : 0

  name                 = "${local.role_name_prefix}scheduler"
  path                 = var.role_path
  permissions_boundary = var.role_permissions_boundary
  description          = "Lets EventBridge Scheduler invoke the ${var.name} function (${local.region})"
  assume_role_policy   = data.aws_iam_policy_document.scheduler_assume.json
  max_session_duration = 3600
  tags                 = local.tags
}

data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    # Confused-deputy guard: only schedules of this account.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count = var.create_role ? 1 : 0

  name   = "${var.name}-scheduler"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid     = "InvokeProbe"
    actions = ["lambda:InvokeFunction"]
    # Built from the name rather than taken from the function resource, so
    # that an in-place update of the function does not re-render this policy.
    # With publish = true the schedules invoke the alias.
    resources = var.publish ? ["${local.function_arn}:${var.alias_name}"] : [local.function_arn]
  }

  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "UseModuleKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [local.kms_key_arn]
  }
}
