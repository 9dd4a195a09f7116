output "function_name" {
  description = "Name of the probe Lambda function."
  value       = module.pop3_probe.function_name
}

output "function_role_arn" {
  description = "ARN of the function's execution role."
  value       = module.pop3_probe.function_role_arn
}

output "security_group_id" {
  description = "Security group the module created for the function."
  value       = module.pop3_probe.security_group_id
}

output "config_secret_arn" {
  description = "ARN of the config secret (put its value with the AWS CLI)."
  value       = module.pop3_probe.config_secret_arn
}

output "topic_arn" {
  description = "Alert topic."
  value       = module.pop3_probe.topic_arn
}
