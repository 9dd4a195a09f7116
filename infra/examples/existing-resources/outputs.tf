output "function_name" {
  description = "Name of the probe Lambda function."
  value       = module.pop3_probe.function_name
}

output "config_secret_arn" {
  description = "ARN of the config secret (put its value with the AWS CLI)."
  value       = module.pop3_probe.config_secret_arn
}

output "lambda_role_policy_json" {
  description = "What lambda_role_arn must be allowed."
  value       = module.pop3_probe.lambda_role_policy_json
}

output "scheduler_role_policy_json" {
  description = "What scheduler_role_arn must be allowed."
  value       = module.pop3_probe.scheduler_role_policy_json
}

output "kms_key_policy_json" {
  description = "What the key policy of kms_key_arn must grant (the module's own key policy, for comparison)."
  value       = module.pop3_probe.kms_key_policy_json
}

output "alarm_arns" {
  description = "Alarm name to ARN."
  value       = module.pop3_probe.alarm_arns
}

output "dead_letter_queue_url" {
  description = "Dead-letter queue of the schedules."
  value       = module.pop3_probe.dead_letter_queue_url
}
