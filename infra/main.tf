data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  # `id` is the region name in provider 5.x and 6.x alike; `name` is
  # deprecated in 6.x and `region` does not exist in 5.x.
  region = data.aws_region.current.id

  # ---------------------------------------------------------------- names
  # Regional resources are named after `name`; IAM roles and the dashboard
  # are global to the account, so they carry the region too: the same
  # `name` in two regions, or two names in one region, never collide.
  function_name      = coalesce(var.function_name, var.name)
  metric_namespace   = coalesce(var.metric_namespace, "Pop3Probe/${var.name}")
  config_secret_name = coalesce(var.config_secret_name, "${var.name}/config")
  schedule_group     = coalesce(var.schedule_group_name, var.name)
  state_table_name   = coalesce(var.state_table_name, "${var.name}-state")
  role_name_prefix   = coalesce(var.role_name_prefix, "${var.name}-${local.region}-")
  dashboard_name     = "${var.name}-${local.region}"

  function_arn   = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.function_name}"
  log_group_name = "/aws/lambda/${local.function_name}"
  # The ARN CloudWatch Logs puts in the KMS encryption context (no ":*").
  log_group_arn = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"

  # ---------------------------------------------------------------- schedule
  # Interval between two runs of one shard, in seconds. Exact for rate();
  # for cron() only where every run is the same distance from the next:
  # every day of the year (day-of-month, month, day-of-week, year all "*"
  # or "?") and a minute/hour pattern that repeats evenly:
  #   "*" hour "*"                     -> 60
  #   "A/N" or "*/N" (N divides 60, A < N), hour "*"  -> N minutes
  #   fixed minute, hour "*"           -> 3600
  #   fixed minute, hour "A/N" or "*/N" (N divides 24, A < N) -> N hours
  #   fixed minute, fixed hour         -> 86400
  # Anything else (lists, ranges, weekdays, "*/7") has uneven gaps: the
  # module then needs schedule_seconds and refuses to guess.
  rate_match = regexall("^rate\\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\\)$", var.schedule_expression)
  rate_seconds = length(local.rate_match) == 0 ? null : (
    tonumber(local.rate_match[0][0]) * lookup({ minute = 60, minutes = 60, hour = 3600, hours = 3600, day = 86400, days = 86400 }, local.rate_match[0][1])
  )

  cron_match = regexall("^cron\\((\\S+) (\\S+) (\\S+) (\\S+) (\\S+) (\\S+)\\)$", var.schedule_expression)
  cron       = length(local.cron_match) == 0 ? null : local.cron_match[0]
  cron_every_day = local.cron == null ? false : (
    contains(["*", "?"], local.cron[2]) && local.cron[3] == "*" && contains(["*", "?"], local.cron[4]) && local.cron[5] == "*"
  )
  cron_minute_fixed = local.cron == null ? false : can(regex("^[0-9]{1,2}$", local.cron[0]))
  cron_hour_fixed   = local.cron == null ? false : can(regex("^[0-9]{1,2}$", local.cron[1]))
  # [start, step] of an "A/N" or "*/N" field, or [] (with "*" as start 0).
  cron_minute_step = local.cron == null ? [] : [for m in regexall("^(\\*|[0-9]{1,2})/([0-9]{1,2})$", local.cron[0]) : [m[0] == "*" ? 0 : tonumber(m[0]), tonumber(m[1])]]
  cron_hour_step   = local.cron == null ? [] : [for m in regexall("^(\\*|[0-9]{1,2})/([0-9]{1,2})$", local.cron[1]) : [m[0] == "*" ? 0 : tonumber(m[0]), tonumber(m[1])]]
  cron_minute_even = length(local.cron_minute_step) == 1 ? (local.cron_minute_step[0][1] > 0 && 60 % local.cron_minute_step[0][1] == 0 && local.cron_minute_step[0][0] < local.cron_minute_step[0][1]) : false
  cron_hour_even   = length(local.cron_hour_step) == 1 ? (local.cron_hour_step[0][1] > 0 && 24 % local.cron_hour_step[0][1] == 0 && local.cron_hour_step[0][0] < local.cron_hour_step[0][1]) : false
  cron_seconds = !local.cron_every_day ? null : (
    local.cron[0] == "*" && local.cron[1] == "*" ? 60 :
    local.cron_minute_even && local.cron[1] == "*" ? local.cron_minute_step[0][1] * 60 :
    local.cron_minute_fixed && local.cron[1] == "*" ? 3600 :
    local.cron_minute_fixed && local.cron_hour_even ? local.cron_hour_step[0][1] * 3600 :
    local.cron_minute_fixed && local.cron_hour_fixed ? 86400 :
    null
  )

  derived_interval_seconds  = local.rate_seconds != null ? local.rate_seconds : local.cron_seconds
  schedule_interval_seconds = var.schedule_seconds != null ? var.schedule_seconds : local.derived_interval_seconds

  # CloudWatch alarm period: one schedule interval, so each period holds
  # exactly one run per shard.
  alarm_period = local.schedule_interval_seconds

  # Lambda keeps an asynchronous event at most 6 hours.
  max_event_age_seconds = local.schedule_interval_seconds == null ? 60 : min(local.schedule_interval_seconds, 21600)

  # null (the default) leaves the function unreserved, as
  # terraform-aws-modules/lambda does: a reservation fails outright on
  # accounts whose concurrency quota is still the new-account 10.
  reserved_concurrency = var.reserved_concurrency == null ? -1 : var.reserved_concurrency

  tags = merge({ "pop3-probe:module" = var.name }, var.tags)
}
