# One customer managed key for everything the module stores or sends: the
# alert topic, the secrets, the state table, the log group, the dead-letter
# queue, the schedules and the function's environment. "kms use only of the
# module's key" is then a single ARN in each policy.
resource "aws_kms_key" "this" {
  count = local.create_kms_key ? 1 : 0

  description             = "${var.name}: alert topic, secrets, state table, logs, schedules"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  count = local.create_kms_key ? 1 : 0

  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this[0].key_id
}

locals {
  # kms_key_arn set: a key the platform team owns; its key policy must
  # grant what the "kms" document below grants (see README).
  create_kms_key = var.kms_key_arn == null
  kms_key_arn    = local.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:This document is only ever the policy of aws_kms_key.this; in a key policy "Resource": "*" means "this key", and a key policy cannot name its own ARN.
  #checkov:skip=CKV_AWS_111:Same: a key policy's "*" resource is the key itself; the writes are scoped by principal (account root, the function's role, CloudWatch, and CloudWatch Logs limited by encryption context).
  #checkov:skip=CKV_AWS_356:Same: a key policy's "*" resource is the key itself, the narrowest resource possible.
  # Without this statement nobody, not even the account's administrators,
  # could manage the key: it delegates access control to IAM policies.
  # In a key policy "Resource": "*" means "this key".
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # The function publishes to the encrypted topic and reads encrypted secrets.
  statement {
    sid       = "ProbeFunction"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.lambda_role_arn]
    }
  }

  # CloudWatch alarms publish to the encrypted topic. This is the statement
  # AWS documents for alarms on an SSE topic; which alarms may publish is
  # narrowed by the topic policy (aws:SourceArn), not here.
  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }

  # CloudWatch Logs encrypts the function's log group, and only that group.
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [local.log_group_arn]
    }
  }
}
