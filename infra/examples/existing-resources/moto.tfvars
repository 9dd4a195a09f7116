# Values for a run against moto's server (tests/run.sh). The key, topics and
# roles are created by tests/moto_fixtures.py and given on the command line
# with the endpoint, the name and the zip.
secret_recovery_window_days = 0
