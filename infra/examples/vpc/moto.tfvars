# Values for a run against moto's server (tests/run.sh); the endpoint, the
# subnets (created by tests/moto_fixtures.py), the name and the zip are
# given on the command line.
alert_emails                = ["ops@example.com"]
vpc_egress_cidrs            = ["10.0.0.0/8"]
secret_recovery_window_days = 0
kms_deletion_window_days    = 7
