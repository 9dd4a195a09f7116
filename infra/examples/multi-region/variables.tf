variable "aws_endpoint_url" {
  description = "Send every AWS call here instead of AWS (a local emulator such as moto, for tests). null: real AWS."
  type        = string
  default     = null
}

variable "name" {
  description = "Name prefix of every resource; the same in each region (the module's names carry the region)."
  type        = string
  default     = "pop3-probe"
}

variable "home_region" {
  description = "Region of the shared state table and alert topic; also the first vantage."
  type        = string
  default     = "us-east-1"
}

variable "vantage_regions" {
  description = "The two other vantages' regions (with the home region, three vantages: a majority of three survives one broken path)."
  type        = list(string)
  default     = ["eu-west-1", "ap-southeast-2"]

  validation {
    condition     = length(var.vantage_regions) == 2 && length(distinct(var.vantage_regions)) == 2
    error_message = "vantage_regions must be two distinct regions (the providers below are written for three vantages)."
  }
}

variable "lambda_zip" {
  description = "The deployment zip (make lambda). Default: the build output of this checkout."
  type        = string
  default     = null
}

variable "schedule_expression" {
  description = "How often every vantage probes. Each vantage runs on its own schedule; the freshness window is two of these intervals."
  type        = string
  default     = "rate(1 minute)"
}

variable "alert_emails" {
  description = "E-mail subscribers of the one shared alert topic."
  type        = list(string)
  default     = []
}

variable "secret_recovery_window_days" {
  description = "Recovery window of the config secrets (0 deletes at once; for tests)."
  type        = number
  default     = 7
}

variable "kms_deletion_window_days" {
  description = "Deletion window of the module's KMS keys."
  type        = number
  default     = 30
}
