output "function_name" {
  description = "Name of the probe Lambda function."
  value       = module.pop3_probe.function_name
}

output "function_role_arn" {
  description = "ARN of the function's execution role."
  value       = module.pop3_probe.function_role_arn
}

output "scheduler_role_arn" {
  description = "ARN of the scheduler's role."
  value       = module.pop3_probe.scheduler_role_arn
}

output "config_secret_arn" {
  description = "ARN of the config secret (put its value with the AWS CLI)."
  value       = module.pop3_probe.config_secret_arn
}

output "topic_arn" {
  description = "Alert topic: subscribe to it."
  value       = module.pop3_probe.topic_arn
}

output "alarm_topic_arn" {
  description = "Alarm topic: subscribe to it."
  value       = module.pop3_probe.alarm_topic_arn
}

output "metric_namespace" {
  description = "CloudWatch namespace of the probe's metrics."
  value       = module.pop3_probe.metric_namespace
}

output "state_table_name" {
  description = "DynamoDB state table."
  value       = module.pop3_probe.state_table_name
}

output "schedule_group_name" {
  description = "Schedule group."
  value       = module.pop3_probe.schedule_group_name
}

output "dashboard_name" {
  description = "CloudWatch dashboard name."
  value       = module.pop3_probe.dashboard_name
}
