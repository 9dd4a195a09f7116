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

variable "secret_recovery_window_days" {
  description = "Recovery window of the config secret; 0 deletes at once (test stacks)."
  type        = number
  default     = 7
}

variable "kms_deletion_window_days" {
  description = "Waiting period before the KMS key is deleted after destroy."
  type        = number
  default     = 30
}
