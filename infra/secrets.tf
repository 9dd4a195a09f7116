# The secrets are resources so that their ARNs (and nothing wider) can go
# into the function's policy. Their values normally never pass through
# Terraform: see README, "Putting the secret value".

resource "aws_secretsmanager_secret" "config" {
  #checkov:skip=CKV2_AWS_57:The secret holds POP3 passwords owned by mail administrators; there is no rotation function for third-party POP3 accounts, and a rotation that does not change the server-side password would break every probe.
  name                    = local.config_secret_name
  description             = "${var.name}: monitor list and POP3 credentials (JSON)"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "config" {
  # Whether a value was given is not itself a secret.
  count = nonsensitive(var.config_secret_value != null) ? 1 : 0

  secret_id     = aws_secretsmanager_secret.config.id
  secret_string = var.config_secret_value

  lifecycle {
    # A value put later with `aws secretsmanager put-secret-value` wins;
    # Terraform must not roll it back on the next apply.
    ignore_changes = [secret_string]
  }
}

resource "aws_secretsmanager_secret" "account" {
  #checkov:skip=CKV2_AWS_57:Holds one third-party POP3 account password; rotating it needs the mail server's administrator, not a rotation Lambda.
  for_each = var.account_secret_names

  name                    = each.value
  description             = "${var.name}: POP3 account credentials"
  kms_key_id              = local.kms_key_arn
  recovery_window_in_days = var.secret_recovery_window_days
  tags                    = local.tags
}

locals {
  # A secret's ARN ends in "-" and six random characters; a name given in
  # extra_secret_arns is widened by exactly those six characters.
  extra_secret_arns = [for s in var.extra_secret_arns :
    startswith(s, "arn:") ? s : "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${s}-??????"
  ]

  # Keys besides the module's (or kms_key_arn) that encrypt secrets in
  # extra_secret_arns: the function may Decrypt with them, nothing else.
  readable_key_arns = distinct(concat([local.kms_key_arn], var.extra_kms_key_arns))

  readable_secret_arns = concat(
    [aws_secretsmanager_secret.config.arn],
    [for s in aws_secretsmanager_secret.account : s.arn],
    local.extra_secret_arns,
  )
}
