output "function_name" {
  description = "Name of the probe Lambda function."
  value       = aws_lambda_function.probe.function_name
}

output "function_arn" {
  description = "ARN of the probe Lambda function."
  value       = aws_lambda_function.probe.arn
}

output "function_role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.lambda.arn
}

output "log_group_name" {
  description = "CloudWatch Logs group of the function."
  value       = aws_cloudwatch_log_group.lambda.name
}

output "topic_arn" {
  description = "ARN of the SNS alert topic (probe alerts and alarm notifications)."
  value       = aws_sns_topic.alerts.arn
}

output "kms_key_arn" {
  description = "ARN of the module's KMS key (topic, secrets, table, logs, queue, schedules)."
  value       = aws_kms_key.this.arn
}

output "state_table_name" {
  description = "Name of the DynamoDB alert-state table."
  value       = aws_dynamodb_table.state.name
}

output "state_table_arn" {
  description = "ARN of the DynamoDB alert-state table."
  value       = aws_dynamodb_table.state.arn
}

output "config_secret_arn" {
  description = "ARN of the config secret; put its value with `aws secretsmanager put-secret-value --secret-id <this>`."
  value       = aws_secretsmanager_secret.config.arn
}

output "config_secret_name" {
  description = "Name of the config secret."
  value       = aws_secretsmanager_secret.config.name
}

output "account_secret_arns" {
  description = "Map of per-account secret name to ARN."
  value       = { for k, s in aws_secretsmanager_secret.account : k => s.arn }
}

output "schedule_arns" {
  description = "ARNs of the per-shard EventBridge Scheduler schedules, in shard order."
  value       = aws_scheduler_schedule.shard[*].arn
}

output "schedule_group_name" {
  description = "EventBridge Scheduler group holding the schedules."
  value       = aws_scheduler_schedule_group.this.name
}

output "dead_letter_queue_url" {
  description = "URL of the SQS queue that receives invocations the schedules could not deliver."
  value       = aws_sqs_queue.dlq.id
}

output "alarm_arns" {
  description = "Map of alarm name to ARN."
  value = merge(
    { for a in [
      aws_cloudwatch_metric_alarm.heartbeat,
      aws_cloudwatch_metric_alarm.lambda_errors,
      aws_cloudwatch_metric_alarm.lambda_throttles,
      aws_cloudwatch_metric_alarm.lambda_duration,
      aws_cloudwatch_metric_alarm.monitors_down,
    ] : a.alarm_name => a.arn },
    { for a in aws_cloudwatch_metric_alarm.availability : a.alarm_name => a.arn },
    { for a in aws_cloudwatch_metric_alarm.response_time : a.alarm_name => a.arn },
  )
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "dashboard_url" {
  description = "Console URL of the CloudWatch dashboard."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards:name=${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "schedule_interval_seconds" {
  description = "Interval between two runs of one shard as the module understood schedule_expression (also the alarm period)."
  value       = local.schedule_interval_seconds
}
