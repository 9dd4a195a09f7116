# The fewest inputs: one shard every five minutes, a key, topics, table and
# roles of the module's own, no subscriptions (subscribe to the outputs
# topic_arn and alarm_topic_arn yourself, or see ../complete). The config
# secret "<name>/config" is created empty; put its value with the AWS CLI
# (see ../../README.md).

module "pop3_probe" {
  source = "../.."

  name       = var.name
  lambda_zip = coalesce(var.lambda_zip, "${path.root}/../../../target/lambda/pop3-probe-lambda/bootstrap.zip")

  # Only so that test stacks can be destroyed and re-created at once;
  # leave both out for a real deployment (7 and 30 days).
  secret_recovery_window_days = var.secret_recovery_window_days
  kms_deletion_window_days    = var.kms_deletion_window_days
}
