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
  value       = local.lambda_role_arn
}

output "log_group_name" {
  description = "CloudWatch Logs group of the function."
  value       = aws_cloudwatch_log_group.lambda.name
}

output "topic_arn" {
  description = "ARN of the SNS topic the probe's alerts go to (the module's or alert_topic_arn)."
  value       = local.alert_topic_arn
}

output "alarm_topic_arn" {
  description = "ARN of the module's alarm topic (null when create_alarm_topic = false or alarm_actions is set)."
  value       = local.create_alarm_topic ? aws_sns_topic.alarms[0].arn : null
}

output "alarm_actions" {
  description = "Where the CloudWatch alarms notify on ALARM."
  value       = local.alarm_actions
}

output "ok_actions" {
  description = "Where the CloudWatch alarms notify on OK."
  value       = local.ok_actions
}

output "scheduler_role_arn" {
  description = "ARN of the role EventBridge Scheduler assumes to invoke the function."
  value       = local.scheduler_role_arn
}

output "lambda_role_policy_json" {
  description = "The policy the function's role needs (attached by the module with create_role = true; for your own role otherwise)."
  value       = data.aws_iam_policy_document.lambda.json
}

output "scheduler_role_policy_json" {
  description = "The policy the scheduler's role needs (attached by the module with create_role = true; for your own role otherwise)."
  value       = data.aws_iam_policy_document.scheduler.json
}

output "kms_key_policy_json" {
  description = "The key policy of the module's key; with kms_key_arn, what your key's policy must grant."
  value       = data.aws_iam_policy_document.kms.json
}

output "metric_namespace" {
  description = "CloudWatch namespace the probe publishes to."
  value       = local.metric_namespace
}

output "security_group_id" {
  description = "ID of the security group the module created for the function in the VPC (null otherwise)."
  value       = one(aws_security_group.probe[*].id)
}

output "alias_arn" {
  description = "ARN of the alias the schedules invoke (publish = true; null otherwise)."
  value       = one(aws_lambda_alias.probe[*].arn)
}

output "kms_key_arn" {
  description = "ARN of the KMS key in use (the module's, or kms_key_arn): topics, secrets, table, logs, queue, schedules."
  value       = local.kms_key_arn
}

output "state_table_name" {
  description = "Name of the DynamoDB alert-state table."
  value       = local.state_table_name
}

output "state_table_arn" {
  description = "ARN of the DynamoDB alert-state table."
  value       = local.state_table_arn
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
      aws_cloudwatch_metric_alarm.dead_letters,
      aws_cloudwatch_metric_alarm.lambda_errors,
      aws_cloudwatch_metric_alarm.lambda_throttles,
      aws_cloudwatch_metric_alarm.lambda_duration,
      aws_cloudwatch_metric_alarm.monitors_down,
    ] : a.alarm_name => a.arn },
    { for a in aws_cloudwatch_metric_alarm.heartbeat : a.alarm_name => a.arn },
    { for a in aws_cloudwatch_metric_alarm.probe_health : a.alarm_name => a.arn },
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
