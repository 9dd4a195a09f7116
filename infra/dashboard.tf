# Per-monitor graphs use SEARCH expressions, so every monitor the probe
# reports appears without listing it here (and without a redeploy when the
# monitor list in the secret changes).
locals {
  ns = local.metric_namespace

  dashboard_widgets = [
    {
      type = "text", x = 0, y = 0, width = 24, height = 1
      properties = {
        markdown = "## ${var.name}: POP3 probe (${var.schedule_expression}, ${var.shards} shard(s)) - alerts to ${local.alert_topic_arn}"
      }
    },
    {
      type = "metric", x = 0, y = 1, width = 12, height = 6
      properties = {
        title   = var.vantage == null ? "Availability per monitor (1 = up)" : "Availability per monitor, consensus of the vantages (1 = up)"
        region  = local.region
        view    = "timeSeries"
        stat    = "Minimum"
        period  = local.alarm_period
        metrics = [[{ expression = "SEARCH('{${local.ns},Monitor} MetricName=\"Availability\"', 'Minimum', ${local.alarm_period})", id = "availability", label = "" }]]
        yAxis   = { left = { min = 0, max = 1 } }
      }
    },
    {
      type = "metric", x = 12, y = 1, width = 12, height = 6
      properties = {
        title   = "Response time per monitor (ms)"
        region  = local.region
        view    = "timeSeries"
        stat    = "Maximum"
        period  = local.alarm_period
        metrics = [[{ expression = "SEARCH('{${local.ns},Monitor} MetricName=\"ResponseTime\"', 'Maximum', ${local.alarm_period})", id = "responsetime", label = "" }]]
        yAxis   = { left = { min = 0 } }
      }
    },
    {
      type = "metric", x = 0, y = 7, width = 8, height = 6
      properties = {
        title   = "Fleet: monitors up / down, runs"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        period  = local.alarm_period
        metrics = concat(
          [
            [local.ns, "MonitorsUp", { stat = "Sum", label = "up", color = "#2ca02c" }],
            [local.ns, "MonitorsDown", { stat = "Sum", label = "down", color = "#d62728" }],
          ],
          # Published only by a vantage: monitors failing from fewer
          # vantages than the quorum (shown, not paged).
          var.vantage == null ? [] : [[local.ns, "MonitorsPartial", { stat = "Sum", label = "partial", color = "#ff7f0e" }]],
        )
      }
    },
    {
      type = "metric", x = 0, y = 19, width = 12, height = 6
      properties = {
        title   = "Runs per shard (heartbeat) and the probe's own failures"
        region  = local.region
        view    = "timeSeries"
        stacked = false
        period  = local.alarm_period
        metrics = concat(
          [[{ expression = "SEARCH('{${local.ns},Shard} MetricName=\"ProbeRuns\"', 'Sum', ${local.alarm_period})", id = "runs", label = "" }]],
          [for a in values(local.probe_health_alarms) : [local.ns, a.metric, { stat = "Maximum", yAxis = "right" }]],
        )
      }
    },
    {
      type = "metric", x = 8, y = 7, width = 8, height = 6
      properties = {
        title  = "Lambda duration (ms) vs timeout"
        region = local.region
        view   = "timeSeries"
        period = local.alarm_period
        metrics = [
          ["AWS/Lambda", "Duration", "FunctionName", local.function_name, { stat = "Maximum", label = "max" }],
          ["AWS/Lambda", "Duration", "FunctionName", local.function_name, { stat = "Average", label = "avg" }],
          [local.ns, "RunDuration", { stat = "Maximum", label = "probe run (code)" }],
        ]
        annotations = {
          horizontal = [{ label = "timeout", value = var.timeout_seconds * 1000 }]
        }
      }
    },
    {
      type = "metric", x = 16, y = 7, width = 8, height = 6
      properties = {
        title  = "Lambda errors and throttles"
        region = local.region
        view   = "timeSeries"
        period = local.alarm_period
        metrics = [
          ["AWS/Lambda", "Errors", "FunctionName", local.function_name, { stat = "Sum", label = "errors", color = "#d62728" }],
          ["AWS/Lambda", "Throttles", "FunctionName", local.function_name, { stat = "Sum", label = "throttles" }],
          ["AWS/Lambda", "Invocations", "FunctionName", local.function_name, { stat = "Sum", label = "invocations" }],
        ]
      }
    },
    {
      type = "metric", x = 0, y = 13, width = 12, height = 6
      properties = {
        title   = "Certificate days remaining per monitor"
        region  = local.region
        view    = "timeSeries"
        period  = 3600
        metrics = [[{ expression = "SEARCH('{${local.ns},Monitor} MetricName=\"CertificateDaysRemaining\"', 'Minimum', 3600)", id = "certdays", label = "" }]]
      }
    },
    {
      type = "alarm", x = 12, y = 13, width = 12, height = 6
      properties = {
        title = "Alarms"
        alarms = concat(
          aws_cloudwatch_metric_alarm.heartbeat[*].arn,
          [for a in aws_cloudwatch_metric_alarm.probe_health : a.arn],
          [
            aws_cloudwatch_metric_alarm.dead_letters.arn,
            aws_cloudwatch_metric_alarm.monitors_down.arn,
            aws_cloudwatch_metric_alarm.lambda_errors.arn,
            aws_cloudwatch_metric_alarm.lambda_throttles.arn,
            aws_cloudwatch_metric_alarm.lambda_duration.arn,
          ],
          [for a in aws_cloudwatch_metric_alarm.availability : a.arn],
          [for a in aws_cloudwatch_metric_alarm.response_time : a.arn],
        )
      }
    },
  ]

  # A vantage publishes Availability twice: {Monitor} is the consensus (the
  # graph above, and what the per-monitor alarms watch), {Monitor,Vantage}
  # this vantage's own view (consensus.metrics = "per_vantage", the
  # default). Each vantage publishes in its own region, so this region's
  # dashboard shows its own vantage; a dip here without one above is a path
  # problem seen from this region only.
  vantage_widgets = var.vantage == null ? [] : [
    {
      type = "metric", x = 12, y = 19, width = 12, height = 6
      properties = {
        title   = "Availability per monitor seen from vantage ${var.vantage} (1 = up)"
        region  = local.region
        view    = "timeSeries"
        stat    = "Minimum"
        period  = local.alarm_period
        metrics = [[{ expression = "SEARCH('{${local.ns},Monitor,Vantage} MetricName=\"Availability\"', 'Minimum', ${local.alarm_period})", id = "vantage", label = "" }]]
        yAxis   = { left = { min = 0, max = 1 } }
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.dashboard_name
  dashboard_body = jsonencode({ widgets = concat(local.dashboard_widgets, local.vantage_widgets) })
}
