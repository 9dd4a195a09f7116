output "function_name" {
  description = "Name of the probe Lambda function."
  value       = module.pop3_probe.function_name
}

output "function_arn" {
  description = "ARN of the probe Lambda function."
  value       = module.pop3_probe.function_arn
}

output "function_role_arn" {
  description = "ARN of the function's execution role."
  value       = module.pop3_probe.function_role_arn
}

output "topic_arn" {
  description = "ARN of the SNS alert topic."
  value       = module.pop3_probe.topic_arn
}

output "kms_key_arn" {
  description = "ARN of the module's KMS key."
  value       = module.pop3_probe.kms_key_arn
}

output "state_table_name" {
  description = "Name of the DynamoDB alert-state table."
  value       = module.pop3_probe.state_table_name
}

output "state_table_arn" {
  description = "ARN of the DynamoDB alert-state table."
  value       = module.pop3_probe.state_table_arn
}

output "config_secret_arn" {
  description = "ARN of the config secret (put its value with the AWS CLI)."
  value       = module.pop3_probe.config_secret_arn
}

output "account_secret_arns" {
  description = "Per-account secret ARNs."
  value       = module.pop3_probe.account_secret_arns
}

output "schedule_arns" {
  description = "Per-shard schedule ARNs."
  value       = module.pop3_probe.schedule_arns
}

output "schedule_group_name" {
  description = "Schedule group name."
  value       = module.pop3_probe.schedule_group_name
}

output "dead_letter_queue_url" {
  description = "Dead-letter queue of the schedules."
  value       = module.pop3_probe.dead_letter_queue_url
}

output "alarm_arns" {
  description = "Alarm name to ARN."
  value       = module.pop3_probe.alarm_arns
}

output "dashboard_name" {
  description = "CloudWatch dashboard name."
  value       = module.pop3_probe.dashboard_name
}

output "dashboard_url" {
  description = "CloudWatch dashboard URL."
  value       = module.pop3_probe.dashboard_url
}

output "log_group_name" {
  description = "Log group of the function."
  value       = module.pop3_probe.log_group_name
}

output "alarm_topic_arn" {
  description = "Topic of the CloudWatch alarms."
  value       = module.pop3_probe.alarm_topic_arn
}

output "scheduler_role_arn" {
  description = "ARN of the scheduler's role."
  value       = module.pop3_probe.scheduler_role_arn
}

output "metric_namespace" {
  description = "CloudWatch namespace of the probe's metrics."
  value       = module.pop3_probe.metric_namespace
}
