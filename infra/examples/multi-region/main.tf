# Three vantages of pop3-probe: the module deployed to three regions, all
# sharing one state table and one alert topic in the home region, so that
# an outage is alerted once, when a quorum of the vantages sees it (see
# docs/vantages.md). A one-region path failure is a `partial` condition:
# shown, not paged.
#
# Why a home-region table and not a global table: the consensus item is
# written conditionally (a version number) so that one vantage wins each
# transition. Conditional writes are consistent within one region; across
# the replicas of an ordinary global table, last writer wins, and a
# transition could be announced twice. docs/vantages.md has the trade-off.
#
# The module inputs this example needs beyond the single-region ones:
# create_state_table/state_table_name (use the shared table), alert_topic_arn
# (publish to the shared topic), extra_kms_key_arns (its key), vantage (the
# vantage name, POP3_PROBE_VANTAGE) and state_table_region (the table's
# region, POP3_PROBE_STATE_REGION and the IAM resource).

locals {
  lambda_zip = coalesce(var.lambda_zip, "${path.root}/../../../target/lambda/pop3-probe-lambda/bootstrap.zip")
  table_name = "${var.name}-vantages"
  topic_name = "${var.name}-vantage-alerts"
  # Spelled out rather than taken from the resource: the module decides at
  # plan time whether it creates its own topic, so the ARN must be known then.
  topic_arn = "arn:${data.aws_partition.home.partition}:sns:${var.home_region}:${data.aws_caller_identity.home.account_id}:${local.topic_name}"
}

data "aws_caller_identity" "home" {
  provider = aws.home
}

data "aws_partition" "home" {
  provider = aws.home
}

# The key of the shared table and topic. The vantages' roles get
# kms:Decrypt and kms:GenerateDataKey on it through extra_kms_key_arns; the
# key policy lets the account's IAM decide, and SNS use it for the topic.
data "aws_iam_policy_document" "shared_key" {
  #checkov:skip=CKV_AWS_109:Only ever the policy of aws_kms_key.shared; in a key policy "Resource": "*" means "this key", and a key policy cannot name its own ARN.
  #checkov:skip=CKV_AWS_111:Same: a key policy's "*" resource is the key itself; the writes are scoped by principal (the account root, CloudWatch).
  #checkov:skip=CKV_AWS_356:Same: a key policy's "*" resource is the key itself, the narrowest resource possible.
  provider = aws.home

  statement {
    sid       = "AccountIAMDecides"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.home.partition}:iam::${data.aws_caller_identity.home.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "shared" {
  provider = aws.home

  description             = "${var.name}: shared state table and alert topic of the vantages"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.shared_key.json
}

resource "aws_dynamodb_table" "shared" {
  provider = aws.home

  name         = local.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "monitor"

  attribute {
    name = "monitor"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.shared.arn
  }
}

resource "aws_sns_topic" "alerts" {
  provider = aws.home

  name              = local.topic_name
  kms_master_key_id = aws_kms_key.shared.arn
}

resource "aws_sns_topic_subscription" "email" {
  provider = aws.home
  for_each = toset(var.alert_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

module "home" {
  source    = "../.."
  providers = { aws = aws.home }

  name                = var.name
  lambda_zip          = local.lambda_zip
  schedule_expression = var.schedule_expression
  config_secret_name  = "${var.name}/config"

  vantage            = local.regions[0]
  create_state_table = false
  state_table_name   = aws_dynamodb_table.shared.name
  state_table_region = var.home_region
  alert_topic_arn    = local.topic_arn
  extra_kms_key_arns = [aws_kms_key.shared.arn]

  secret_recovery_window_days = var.secret_recovery_window_days
  kms_deletion_window_days    = var.kms_deletion_window_days
}

module "second" {
  source    = "../.."
  providers = { aws = aws.second }

  name                = var.name
  lambda_zip          = local.lambda_zip
  schedule_expression = var.schedule_expression
  config_secret_name  = "${var.name}/config"

  vantage            = local.regions[1]
  create_state_table = false
  state_table_name   = aws_dynamodb_table.shared.name
  state_table_region = var.home_region
  alert_topic_arn    = local.topic_arn
  extra_kms_key_arns = [aws_kms_key.shared.arn]

  secret_recovery_window_days = var.secret_recovery_window_days
  kms_deletion_window_days    = var.kms_deletion_window_days
}

module "third" {
  source    = "../.."
  providers = { aws = aws.third }

  name                = var.name
  lambda_zip          = local.lambda_zip
  schedule_expression = var.schedule_expression
  config_secret_name  = "${var.name}/config"

  vantage            = local.regions[2]
  create_state_table = false
  state_table_name   = aws_dynamodb_table.shared.name
  state_table_region = var.home_region
  alert_topic_arn    = local.topic_arn
  extra_kms_key_arns = [aws_kms_key.shared.arn]

  secret_recovery_window_days = var.secret_recovery_window_days
  kms_deletion_window_days    = var.kms_deletion_window_days
}
