variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region code such as eu-west-1."
  }
}

variable "aws_endpoint_url" {
  description = "Send every AWS API call to this endpoint instead of AWS (moto: http://127.0.0.1:PORT). null for real AWS."
  type        = string
  default     = null

  validation {
    condition     = var.aws_endpoint_url == null ? true : can(regex("^https?://[^/\\s]+/?$", var.aws_endpoint_url))
    error_message = "aws_endpoint_url must be a base URL such as http://127.0.0.1:5000 (or null for AWS)."
  }
}

variable "name" {
  description = "Name prefix for the deployment's resources."
  type        = string
  default     = "pop3-probe"
}

variable "lambda_zip" {
  description = "Deployment zip; null means the one `make lambda` builds (target/lambda/pop3-probe-lambda/bootstrap.zip at the repository root)."
  type        = string
  default     = null
}

variable "architecture" {
  description = "arm64 or x86_64; must match the zip (make lambda builds arm64)."
  type        = string
  default     = "arm64"
}

variable "timeout_seconds" {
  description = "Function timeout; must stay below the schedule interval."
  type        = number
  default     = 50
}

variable "log_retention_days" {
  description = "Retention of the function's logs."
  type        = number
  default     = 30
}

variable "duration_alarm_ratio" {
  description = "Duration alarm threshold as a fraction of the timeout."
  type        = number
  default     = 0.8
}

variable "schedule_expression" {
  description = "How often each shard runs."
  type        = string
  default     = "rate(5 minutes)"
}

variable "shards" {
  description = "Number of shards (one schedule each)."
  type        = number
  default     = 2
}

variable "alert_emails" {
  description = "E-mail addresses that receive alerts."
  type        = list(string)
  default     = []
}

variable "alert_sms_numbers" {
  description = "E.164 phone numbers that receive outages, recoveries, probe errors and heartbeat alarms by SMS."
  type        = list(string)
  default     = []
}

variable "account_secret_names" {
  description = "Extra per-account secrets the module creates (values put out of band)."
  type        = set(string)
  default     = []
}

variable "availability_alarm_monitors" {
  description = "Monitors with their own Availability alarm."
  type        = list(string)
  default     = ["mail-example-com"]
}

variable "response_time_alarm_monitors" {
  description = "Monitor name to ResponseTime alarm threshold (ms)."
  type        = map(number)
  default     = { "mail-example-com" = 2000 }
}

variable "secret_recovery_window_days" {
  description = "Recovery window of the secrets; 0 deletes at once (test stacks)."
  type        = number
  default     = 7
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the KMS key is deleted after destroy."
  type        = number
  default     = 30
}

variable "role_path" {
  description = "IAM path of the module's roles."
  type        = string
  default     = "/"
}

variable "role_permissions_boundary" {
  description = "Permissions boundary (managed policy ARN) of the module's roles, if your organisation requires one."
  type        = string
  default     = null
}
