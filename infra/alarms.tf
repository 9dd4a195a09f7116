# Every alarm sets treat_missing_data explicitly: with the default
# ("missing") a probe that stops reporting never alarms. Alarm and OK
# notifications go to the alert topic.

locals {
  alarm_actions = [aws_sns_topic.alerts.arn]
}

# The probe stopped running: no ProbeRuns datapoint for
# heartbeat_missed_runs consecutive intervals. Silence is the failure here,
# so missing data is breaching.
resource "aws_cloudwatch_metric_alarm" "heartbeat" {
  alarm_name        = "${var.name}-heartbeat"
  alarm_description = "The POP3 probe has not run for ${var.heartbeat_missed_runs} schedule interval(s) (${var.schedule_expression}): no ProbeRuns in ${var.metric_namespace}."

  namespace           = var.metric_namespace
  metric_name         = "ProbeRuns"
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = var.heartbeat_missed_runs
  datapoints_to_alarm = var.heartbeat_missed_runs
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = local.tags
}

# The function failed (panic, timeout, init error). No invocations means
# no errors; the heartbeat covers "not invoked at all".
resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  alarm_name        = "${var.name}-lambda-errors"
  alarm_description = "The POP3 probe function reported errors."

  namespace   = "AWS/Lambda"
  metric_name = "Errors"
  dimensions = {
    FunctionName = aws_lambda_function.probe.function_name
  }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.lambda_errors_threshold
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = local.tags
}

resource "aws_cloudwatch_metric_alarm" "lambda_throttles" {
  alarm_name        = "${var.name}-lambda-throttles"
  alarm_description = "Invocations of the POP3 probe function were throttled (reserved concurrency too low for the shards?)."

  namespace   = "AWS/Lambda"
  metric_name = "Throttles"
  dimensions = {
    FunctionName = aws_lambda_function.probe.function_name
  }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = local.tags
}

# Runs are getting close to the timeout: add shards or raise the timeout
# before monitors start being cut off.
resource "aws_cloudwatch_metric_alarm" "lambda_duration" {
  alarm_name        = "${var.name}-lambda-duration"
  alarm_description = "The slowest POP3 probe run took more than ${floor(var.duration_alarm_ratio * 100)}% of the ${var.timeout_seconds}s timeout."

  namespace   = "AWS/Lambda"
  metric_name = "Duration"
  dimensions = {
    FunctionName = aws_lambda_function.probe.function_name
  }
  statistic           = "Maximum"
  period              = local.alarm_period
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = floor(var.timeout_seconds * 1000 * var.duration_alarm_ratio)
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = local.tags
}

# Fleet-wide: monitors down in the last run, summed over the shards.
# Missing data keeps the current state: a silent probe is the heartbeat's
# business and must not send a false "OK" here.
resource "aws_cloudwatch_metric_alarm" "monitors_down" {
  alarm_name        = "${var.name}-monitors-down"
  alarm_description = "More than ${var.monitors_down_threshold} POP3 monitor(s) down."

  namespace           = var.metric_namespace
  metric_name         = "MonitorsDown"
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.monitors_down_threshold
  treat_missing_data  = "ignore"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = local.tags
}

# Per monitor: M of the last N runs failed. A monitor that reports nothing
# (removed from the config, or the probe stopped) goes to
# INSUFFICIENT_DATA rather than ALARM; the heartbeat covers the latter.
resource "aws_cloudwatch_metric_alarm" "availability" {
  for_each = toset(var.availability_alarm_monitors)

  alarm_name        = "${var.name}-availability-${each.value}"
  alarm_description = "POP3 monitor ${each.value} failed in ${var.monitor_alarm_datapoints} of the last ${var.monitor_alarm_periods} runs."

  namespace   = var.metric_namespace
  metric_name = "Availability"
  dimensions = {
    Monitor = each.value
  }
  statistic           = "Minimum"
  period              = local.alarm_period
  evaluation_periods  = var.monitor_alarm_periods
  datapoints_to_alarm = var.monitor_alarm_datapoints
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "missing"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = local.tags
}

# Per monitor: slower than its threshold in M of the last N runs. A down
# monitor has no response time; that is the availability alarm's case, so
# missing data is not breaching.
resource "aws_cloudwatch_metric_alarm" "response_time" {
  for_each = var.response_time_alarm_monitors

  alarm_name        = "${var.name}-responsetime-${each.key}"
  alarm_description = "POP3 monitor ${each.key} answered slower than ${each.value} ms in ${var.monitor_alarm_datapoints} of the last ${var.monitor_alarm_periods} runs."

  namespace   = var.metric_namespace
  metric_name = "ResponseTime"
  dimensions = {
    Monitor = each.key
  }
  statistic           = "Maximum"
  period              = local.alarm_period
  evaluation_periods  = var.monitor_alarm_periods
  datapoints_to_alarm = var.monitor_alarm_datapoints
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.alarm_actions
  tags            = local.tags
}
