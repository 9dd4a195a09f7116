# The probe inside an existing VPC, to watch internal mail servers. The
# module creates a security group with no inbound rule and outbound TCP to
# the POP3/SMTP ports and 443 only (or pass vpc_security_group_ids).
#
# The subnets must reach, besides the mail servers:
#   - Secrets Manager, CloudWatch (monitoring), SNS, DynamoDB, CloudWatch
#     Logs: a NAT gateway, or interface endpoints for secretsmanager,
#     monitoring, sns, logs and a gateway endpoint for dynamodb;
#   - OAuth2 token endpoints, if monitors log in with OAuth2 (NAT, or a
#     proxy/endpoint in the VPC).
# See ../../README.md, "In a VPC".

module "pop3_probe" {
  source = "../.."

  name       = var.name
  lambda_zip = coalesce(var.lambda_zip, "${path.root}/../../../target/lambda/pop3-probe-lambda/bootstrap.zip")

  vpc_subnet_ids   = var.vpc_subnet_ids
  vpc_egress_cidrs = var.vpc_egress_cidrs
  # POP3, POP3S, SMTP submission and HTTPS; add the ports of tcp monitors.
  vpc_egress_ports = [110, 995, 25, 465, 587, 443]

  alert_emails = var.alert_emails

  secret_recovery_window_days = var.secret_recovery_window_days
  kms_deletion_window_days    = var.kms_deletion_window_days
}
