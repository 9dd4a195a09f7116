# ---------------------------------------------------------------------------
# The function's role: exactly the API calls the Rust code makes, each on the
# narrowest resource AWS allows. tests/policy_vs_code.py keeps this list and
# src/ in step.
# ---------------------------------------------------------------------------

resource "aws_iam_role" "lambda" {
  name                 = "${var.name}-lambda"
  description          = "Execution role of the ${var.name} POP3 probe function"
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
  name   = "${var.name}-lambda"
  role   = aws_iam_role.lambda.id
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
      values   = [var.metric_namespace]
    }
  }

  statement {
    sid       = "PublishAlerts"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }

  statement {
    sid       = "AlertState"
    actions   = ["dynamodb:BatchGetItem", "dynamodb:PutItem"]
    resources = [aws_dynamodb_table.state.arn]
  }

  # Publishing to the SSE topic needs a data key; reading the secrets needs
  # Decrypt. Only the module's own key.
  statement {
    sid       = "UseModuleKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }

  # The Lambda runtime writes the function's logs. The group exists
  # already (lambda.tf), so no logs:CreateLogGroup.
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${local.log_group_arn}:*"]
  }
}

# ---------------------------------------------------------------------------
# EventBridge Scheduler's role: a schedule cannot invoke a target without
# one. It may invoke this function, dead-letter to this queue, and use the
# module's key (schedules and queue are encrypted with it). Nothing else.
# ---------------------------------------------------------------------------

resource "aws_iam_role" "scheduler" {
  name                 = "${var.name}-scheduler"
  description          = "Lets EventBridge Scheduler invoke the ${var.name} function"
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
  name   = "${var.name}-scheduler"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid     = "InvokeProbe"
    actions = ["lambda:InvokeFunction"]
    # Built from the name rather than taken from the function resource, so
    # that an in-place update of the function does not re-render this policy.
    resources = [local.function_arn]
  }

  statement {
    sid       = "DeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "UseModuleKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}
