# Values for a run against moto's server (tests/run.sh); the endpoint, the
# region, the name and the zip are given on the command line.
secret_recovery_window_days = 0
kms_deletion_window_days    = 7
