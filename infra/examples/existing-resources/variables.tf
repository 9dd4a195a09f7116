variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "aws_endpoint_url" {
  description = "Send every AWS API call to this endpoint instead of AWS (moto: http://127.0.0.1:PORT). null for real AWS."
  type        = string
  default     = null
}

variable "name" {
  description = "Name of the deployment; every resource name derives from it."
  type        = string
  default     = "pop3-probe"
}

variable "lambda_zip" {
  description = "Deployment zip; null means the one `make lambda` builds (target/lambda/pop3-probe-lambda/bootstrap.zip at the repository root)."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "The platform's KMS key (its policy must grant what the module output kms_key_policy_json grants)."
  type        = string
}

variable "alert_topic_arn" {
  description = "The platform's SNS topic for the probe's alerts (its policy must let lambda_role_arn publish)."
  type        = string
}

variable "pager_topic_arn" {
  description = "Topic of the pager that receives the CloudWatch alarms (ALARM and OK)."
  type        = string
}

variable "lambda_role_arn" {
  description = "The function's execution role (trusted by lambda.amazonaws.com, policy: module output lambda_role_policy_json)."
  type        = string
}

variable "scheduler_role_arn" {
  description = "EventBridge Scheduler's role (trusted by scheduler.amazonaws.com, policy: module output scheduler_role_policy_json)."
  type        = string
}

variable "secret_recovery_window_days" {
  description = "Recovery window of the config secret; 0 deletes at once (test stacks)."
  type        = number
  default     = 7
}
