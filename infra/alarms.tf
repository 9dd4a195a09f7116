# Every alarm sets treat_missing_data explicitly: with the default
# ("missing") a probe that stops reporting never alarms. Alarm and OK
# notifications go to local.alarm_actions / local.ok_actions (alerting.tf).

# One shard stopped running: no ProbeRuns datapoint with its Shard
# dimension for heartbeat_missed_runs consecutive intervals. One alarm per
# shard, because a sum over the shards stays green while one is dead.
# Silence is the failure here, so missing data is breaching.
resource "aws_cloudwatch_metric_alarm" "heartbeat" {
  count = var.shards

  alarm_name        = "${var.name}-heartbeat-shard-${count.index}"
  alarm_description = "Shard ${count.index} of the mail probe has not run for ${var.heartbeat_missed_runs} schedule interval(s) (${var.schedule_expression}): no ProbeRuns{Shard=${count.index}} in ${local.metric_namespace}."

  namespace   = local.metric_namespace
  metric_name = "ProbeRuns"
  dimensions = {
    Shard = tostring(count.index)
  }
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = var.heartbeat_missed_runs
  datapoints_to_alarm = var.heartbeat_missed_runs
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.ok_actions
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
  ok_actions      = local.ok_actions
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
  ok_actions      = local.ok_actions
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
  ok_actions      = local.ok_actions
  tags            = local.tags
}

# Fleet-wide: monitors down in the last run, summed over the shards.
# Missing data keeps the current state: a silent probe is the heartbeat's
# business and must not send a false "OK" here.
resource "aws_cloudwatch_metric_alarm" "monitors_down" {
  alarm_name        = "${var.name}-monitors-down"
  alarm_description = "More than ${var.monitors_down_threshold} POP3 monitor(s) down."

  namespace           = local.metric_namespace
  metric_name         = "MonitorsDown"
  statistic           = "Sum"
  period              = local.alarm_period
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.monitors_down_threshold
  treat_missing_data  = "ignore"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.ok_actions
  tags            = local.tags
}

# Per monitor: M of the last N runs failed. A monitor that reports nothing
# (removed from the config, or the probe stopped) goes to
# INSUFFICIENT_DATA rather than ALARM; the heartbeat covers the latter.
resource "aws_cloudwatch_metric_alarm" "availability" {
  for_each = toset(var.availability_alarm_monitors)

  alarm_name        = "${var.name}-availability-${each.value}"
  alarm_description = "POP3 monitor ${each.value} failed in ${var.monitor_alarm_datapoints} of the last ${var.monitor_alarm_periods} runs."

  namespace   = local.metric_namespace
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
  ok_actions      = local.ok_actions
  tags            = local.tags
}

# Per monitor: slower than its threshold in M of the last N runs. A down
# monitor has no response time; that is the availability alarm's case, so
# missing data is not breaching.
resource "aws_cloudwatch_metric_alarm" "response_time" {
  for_each = var.response_time_alarm_monitors

  alarm_name        = "${var.name}-responsetime-${each.key}"
  alarm_description = "POP3 monitor ${each.key} answered slower than ${each.value} ms in ${var.monitor_alarm_datapoints} of the last ${var.monitor_alarm_periods} runs."

  namespace   = local.metric_namespace
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
  ok_actions      = local.ok_actions
  tags            = local.tags
}

# ---------------------------------------------------------------------------
# The probe's own failures (run-level metrics, Count, no dimension). Missing
# data is not breaching: no datapoint means no run, the heartbeat's case.
# ---------------------------------------------------------------------------

locals {
  probe_health_alarms = {
    "alerts-failed" = {
      metric      = "AlertsFailed"
      description = "Alerts could not be delivered to SNS: people are not told about outages."
      periods     = 1
    }
    "metrics-pending" = {
      metric      = "MetricsPending"
      description = "Metric values are waiting to be published for ${var.metrics_pending_runs} run(s) in a row: CloudWatch is refusing them (throttling, permissions)."
      periods     = var.metrics_pending_runs
    }
    "monitors-skipped" = {
      metric      = "MonitorsSkipped"
      description = "Monitors were skipped because the run hit its deadline: add shards or raise the timeout."
      periods     = 1
    }
    "monitors-misconfigured" = {
      metric      = "MonitorsMisconfigured"
      description = "Monitors in the config secret are broken and are not being watched."
      periods     = 1
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "probe_health" {
  for_each = local.probe_health_alarms

  alarm_name        = "${var.name}-${each.key}"
  alarm_description = each.value.description

  namespace           = local.metric_namespace
  metric_name         = each.value.metric
  statistic           = "Maximum"
  period              = local.alarm_period
  evaluation_periods  = each.value.periods
  datapoints_to_alarm = each.value.periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.ok_actions
  tags            = local.tags
}

# Invocations the schedules could not deliver (throttled, function
# missing, permission denied) wait in the dead-letter queue: any message
# there is a run that never happened.
resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name        = "${var.name}-dead-letters"
  alarm_description = "Scheduled invocations of the mail probe could not be delivered and wait in ${aws_sqs_queue.dlq.name}."

  namespace   = "AWS/SQS"
  metric_name = "ApproximateNumberOfMessagesVisible"
  dimensions = {
    QueueName = aws_sqs_queue.dlq.name
  }
  statistic           = "Maximum"
  period              = min(local.alarm_period, 3600)
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"

  actions_enabled = true
  alarm_actions   = local.alarm_actions
  ok_actions      = local.ok_actions
  tags            = local.tags
}
