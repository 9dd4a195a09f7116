data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  function_name  = var.name
  function_arn   = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.function_name}"
  log_group_name = "/aws/lambda/${local.function_name}"
  # The ARN CloudWatch Logs puts in the KMS encryption context (no ":*").
  log_group_arn = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"

  # Interval between two runs of one shard, in seconds. Exact for rate();
  # for cron() it is the shortest gap the minute field allows: "*/N" or
  # "A/N" -> N minutes, a single minute -> hourly, anything else (lists,
  # ranges, "*") -> one minute. Erring short keeps the timeout check safe.
  rate_match        = regexall("^rate\\(([0-9]+) (minute|minutes|hour|hours)\\)$", var.schedule_expression)
  cron_minute_match = regexall("^cron\\((\\S+) ", var.schedule_expression)
  cron_minute       = length(local.cron_minute_match) > 0 ? local.cron_minute_match[0][0] : ""
  cron_step_match   = regexall("^(?:\\*|[0-9]+)/([0-9]+)$", local.cron_minute)
  schedule_interval_seconds = (
    length(local.rate_match) > 0 ? tonumber(local.rate_match[0][0]) * (startswith(local.rate_match[0][1], "hour") ? 3600 : 60) :
    length(local.cron_step_match) > 0 ? tonumber(local.cron_step_match[0][0]) * 60 :
    can(regex("^[0-9]+$", local.cron_minute)) ? 3600 :
    60
  )

  # CloudWatch alarm period: one schedule interval, so each period holds
  # exactly one run per shard.
  alarm_period = local.schedule_interval_seconds

  reserved_concurrency = var.reserved_concurrency == null ? var.shards : var.reserved_concurrency

  tags = merge({ "pop3-probe:module" = var.name }, var.tags)
}
