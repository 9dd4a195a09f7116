# A platform team's own key, topic and roles: the module creates no KMS key,
# no alert topic and no IAM. Give the roles the policies of the outputs
# lambda_role_policy_json / scheduler_role_policy_json (a two-step apply:
# `terraform apply -target=module.pop3_probe.data.aws_iam_policy_document.lambda`
# shows them first, or read them from a plan), and let the key and topic
# policies grant what README "Bring your own key, topic and role" lists.
#
# The CloudWatch alarms go to a pager's topic instead of a module topic;
# subscriptions to the platform's topic are theirs to manage, so none are
# made here.

module "pop3_probe" {
  source = "../.."

  name       = var.name
  lambda_zip = coalesce(var.lambda_zip, "${path.root}/../../../target/lambda/pop3-probe-lambda/bootstrap.zip")

  kms_key_arn     = var.kms_key_arn
  alert_topic_arn = var.alert_topic_arn
  alarm_actions   = [var.pager_topic_arn]
  ok_actions      = [var.pager_topic_arn]

  create_role        = false
  lambda_role_arn    = var.lambda_role_arn
  scheduler_role_arn = var.scheduler_role_arn

  secret_recovery_window_days = var.secret_recovery_window_days
}
