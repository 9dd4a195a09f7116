# A complete pop3-probe deployment: two shards every five minutes, alerts by
# e-mail and SMS, per-monitor alarms for one monitor. The config secret is
# created empty; put its value with the AWS CLI (see ../../README.md).

locals {
  lambda_zip = coalesce(var.lambda_zip, "${path.root}/../../../target/lambda/pop3-probe-lambda/bootstrap.zip")
}

module "pop3_probe" {
  source = "../.."

  name       = var.name
  lambda_zip = local.lambda_zip

  architecture       = var.architecture
  memory_size        = 128
  timeout_seconds    = var.timeout_seconds
  log_retention_days = var.log_retention_days

  schedule_expression = var.schedule_expression
  shards              = var.shards

  # The config secret is "<name>/config", the namespace "Pop3Probe/<name>".
  account_secret_names = var.account_secret_names

  alert_emails      = var.alert_emails
  alert_sms_numbers = var.alert_sms_numbers

  availability_alarm_monitors  = var.availability_alarm_monitors
  response_time_alarm_monitors = var.response_time_alarm_monitors
  duration_alarm_ratio         = var.duration_alarm_ratio

  # Organisation policy: roles under a path, with a permissions boundary.
  role_path                 = var.role_path
  role_permissions_boundary = var.role_permissions_boundary

  secret_recovery_window_days = var.secret_recovery_window_days
  kms_deletion_window_days    = var.kms_deletion_window_days

  tags = {
    environment = "example"
  }
}
