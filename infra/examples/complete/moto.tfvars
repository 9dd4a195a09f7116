# Values for a run against moto's server (tests/run.sh and `make deploy MOTO=1`).
# aws_endpoint_url is given on the command line because the port is picked at
# run time:  -var-file=moto.tfvars -var aws_endpoint_url=http://127.0.0.1:PORT
region                      = "eu-west-1"
name                        = "pop3-probe-moto"
shards                      = 3
alert_emails                = ["ops@example.com"]
alert_sms_numbers           = ["+15555550100"]
account_secret_names        = ["pop3-probe-moto/account/mail-example-com"]
secret_recovery_window_days = 0
kms_deletion_window_days    = 7
role_path                   = "/pop3-probe/"
# role_permissions_boundary: created by tests/moto_fixtures.py boundary
