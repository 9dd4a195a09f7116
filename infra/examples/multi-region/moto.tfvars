# Values for a run against moto (infra/tests/multi_region.sh); the endpoint
# is given on the command line because its port is picked at run time.
name                        = "pop3-probe-mr"
home_region                 = "us-east-1"
vantage_regions             = ["eu-west-1", "ap-southeast-2"]
secret_recovery_window_days = 0
kms_deletion_window_days    = 7
