# The optional inputs of issue 15, checked on the plan (mocked provider, no
# AWS): each knob reaches the resource it is for, and the combinations the
# module must refuse are refused. The moto runs (run.sh) cover the
# defaults, examples/vpc and examples/existing-resources end to end.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { id = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_subnet" {
    defaults = { vpc_id = "vpc-0123456789abcdef0" }
  }
}

variables {
  name      = "opt-test"
  s3_bucket = "artifacts-example"
  s3_key    = "pop3-probe/bootstrap.zip"
}

run "defaults_unreserved_passthrough_no_alias" {
  command = plan
  assert {
    condition     = aws_lambda_function.probe.reserved_concurrent_executions == -1
    error_message = "the function must be unreserved by default"
  }
  assert {
    condition     = aws_lambda_function.probe.tracing_config[0].mode == "PassThrough"
    error_message = "tracing must default to PassThrough"
  }
  assert {
    condition     = length(aws_lambda_alias.probe) == 0 && aws_lambda_function.probe.publish == false
    error_message = "no alias and no published version by default"
  }
  assert {
    condition     = aws_lambda_function.probe.s3_bucket == "artifacts-example" && aws_lambda_function.probe.filename == null
    error_message = "the S3 artifact must be used"
  }
  assert {
    condition     = aws_iam_role.lambda[0].name == "opt-test-eu-west-1-lambda" && aws_iam_role.scheduler[0].name == "opt-test-eu-west-1-scheduler"
    error_message = "role names must carry the region"
  }
  assert {
    condition     = aws_lambda_function.probe.environment[0].variables["POP3_PROBE_NAMESPACE"] == "Pop3Probe/opt-test"
    error_message = "the namespace must derive from name"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.heartbeat) == 1 && aws_cloudwatch_metric_alarm.heartbeat[0].dimensions["Shard"] == "0"
    error_message = "one heartbeat alarm per shard, with the Shard dimension"
  }
}

run "knobs_reach_their_resources" {
  command = plan
  variables {
    reserved_concurrency       = 4
    shards                     = 3
    tracing_mode               = "Active"
    publish                    = true
    alias_name                 = "current"
    code_signing_config_arn    = "arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-0123456789abcdef0"
    on_failure_destination_arn = "arn:aws:sqs:eu-west-1:123456789012:probe-failures"
    s3_object_version          = "v3"
    role_path                  = "/workloads/"
    role_permissions_boundary  = "arn:aws:iam::123456789012:policy/boundary"
    log_retention_days         = 90
  }
  assert {
    condition     = aws_lambda_function.probe.reserved_concurrent_executions == 4
    error_message = "reserved_concurrency"
  }
  assert {
    condition     = aws_lambda_function.probe.tracing_config[0].mode == "Active"
    error_message = "tracing_mode"
  }
  assert {
    condition     = aws_lambda_function.probe.publish && aws_lambda_alias.probe[0].name == "current" && aws_lambda_function_event_invoke_config.probe.qualifier == "current"
    error_message = "publish: alias and its invoke config"
  }
  assert {
    condition     = aws_lambda_function.probe.code_signing_config_arn == "arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-0123456789abcdef0"
    error_message = "code_signing_config_arn"
  }
  assert {
    condition     = aws_lambda_function_event_invoke_config.probe.destination_config[0].on_failure[0].destination == "arn:aws:sqs:eu-west-1:123456789012:probe-failures"
    error_message = "on_failure_destination_arn"
  }
  assert {
    condition     = aws_lambda_function.probe.s3_object_version == "v3"
    error_message = "s3_object_version"
  }
  assert {
    condition     = aws_iam_role.lambda[0].path == "/workloads/" && aws_iam_role.scheduler[0].permissions_boundary == "arn:aws:iam::123456789012:policy/boundary"
    error_message = "role_path and role_permissions_boundary on both roles"
  }
  assert {
    condition     = aws_cloudwatch_log_group.lambda.retention_in_days == 90
    error_message = "log_retention_days"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.heartbeat) == 3 && length(aws_scheduler_schedule.shard) == 3
    error_message = "three shards: three schedules, three heartbeat alarms"
  }
}

run "bring_your_own_creates_none_of_its_own" {
  command = plan
  variables {
    kms_key_arn        = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    alert_topic_arn    = "arn:aws:sns:eu-west-1:123456789012:platform-alerts"
    alarm_actions      = ["arn:aws:sns:eu-west-1:123456789012:pager"]
    ok_actions         = []
    create_role        = false
    lambda_role_arn    = "arn:aws:iam::123456789012:role/platform/probe-fn"
    scheduler_role_arn = "arn:aws:iam::123456789012:role/platform/probe-scheduler"
    create_state_table = false
    state_table_name   = "shared-probe-state"
  }
  assert {
    condition     = length(aws_kms_key.this) == 0 && length(aws_sns_topic.alerts) == 0 && length(aws_sns_topic.alarms) == 0 && length(aws_iam_role.lambda) == 0 && length(aws_iam_role.scheduler) == 0 && length(aws_iam_role_policy.lambda) == 0 && length(aws_dynamodb_table.state) == 0
    error_message = "the module must create no key, topic, role or table of its own"
  }
  assert {
    condition     = aws_lambda_function.probe.role == "arn:aws:iam::123456789012:role/platform/probe-fn" && aws_lambda_function.probe.kms_key_arn == "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    error_message = "the given role and key"
  }
  assert {
    condition     = aws_lambda_function.probe.environment[0].variables["POP3_PROBE_TOPIC_ARN"] == "arn:aws:sns:eu-west-1:123456789012:platform-alerts" && aws_lambda_function.probe.environment[0].variables["POP3_PROBE_STATE_TABLE"] == "shared-probe-state"
    error_message = "the given topic and table"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.heartbeat[0].alarm_actions) == 1 && contains(aws_cloudwatch_metric_alarm.heartbeat[0].alarm_actions, "arn:aws:sns:eu-west-1:123456789012:pager") && length(aws_cloudwatch_metric_alarm.heartbeat[0].ok_actions) == 0
    error_message = "alarm_actions and ok_actions (empty: no OK notifications)"
  }
  assert {
    condition     = output.state_table_arn == "arn:aws:dynamodb:eu-west-1:123456789012:table/shared-probe-state"
    error_message = "the existing table's ARN"
  }
}

run "vpc_with_its_own_security_group" {
  command = plan
  variables {
    vpc_subnet_ids   = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
    vpc_egress_ports = [995, 443]
  }
  assert {
    condition     = length(aws_security_group.probe) == 1 && aws_security_group.probe[0].vpc_id == "vpc-0123456789abcdef0"
    error_message = "a security group in the subnets' VPC"
  }
  assert {
    condition     = length(aws_vpc_security_group_egress_rule.probe) == 2
    error_message = "one egress rule per port and CIDR"
  }
  assert {
    condition     = aws_lambda_function.probe.vpc_config[0].subnet_ids == toset(["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"])
    error_message = "the function in the given subnets"
  }
}

run "vpc_with_given_security_groups" {
  command = plan
  variables {
    vpc_subnet_ids         = ["subnet-0aaaaaaaaaaaaaaa1"]
    vpc_security_group_ids = ["sg-0bbbbbbbbbbbbbbb1"]
  }
  assert {
    condition     = length(aws_security_group.probe) == 0 && aws_lambda_function.probe.vpc_config[0].security_group_ids == toset(["sg-0bbbbbbbbbbbbbbb1"])
    error_message = "the given group and none of the module's"
  }
}

run "refuses_recovered_without_down" {
  command = plan
  variables {
    sms_filter_statuses = ["recovered", "probe_error"]
  }
  expect_failures = [var.sms_filter_statuses]
}

run "refuses_create_role_false_without_roles" {
  command = plan
  variables {
    create_role     = false
    lambda_role_arn = "arn:aws:iam::123456789012:role/probe-fn"
  }
  expect_failures = [var.create_role]
}

run "refuses_existing_table_without_a_name" {
  command = plan
  variables {
    create_state_table = false
  }
  expect_failures = [var.create_state_table]
}

run "refuses_two_artifacts" {
  command = plan
  variables {
    lambda_zip = "bootstrap.zip"
  }
  expect_failures = [var.lambda_zip]
}

run "refuses_security_groups_without_subnets" {
  command = plan
  variables {
    vpc_security_group_ids = ["sg-0bbbbbbbbbbbbbbb1"]
  }
  expect_failures = [var.vpc_security_group_ids]
}

run "refuses_a_heartbeat_window_longer_than_cloudwatch_allows" {
  command = plan
  variables {
    schedule_expression   = "rate(1 day)"
    timeout_seconds       = 60
    heartbeat_missed_runs = 8
  }
  expect_failures = [var.heartbeat_missed_runs]
}

# Issue 16: one vantage of a multi-region deployment (examples/multi-region
# runs three of these against moto).
run "vantage_with_a_home_region_table" {
  command = plan
  variables {
    vantage            = "eu-west-1"
    create_state_table = false
    state_table_name   = "probe-vantages"
    state_table_region = "us-east-1"
  }
  assert {
    condition     = aws_lambda_function.probe.environment[0].variables["POP3_PROBE_VANTAGE"] == "eu-west-1" && aws_lambda_function.probe.environment[0].variables["POP3_PROBE_STATE_REGION"] == "us-east-1"
    error_message = "the vantage name and the table's region reach the function"
  }
  assert {
    condition     = output.state_table_arn == "arn:aws:dynamodb:us-east-1:123456789012:table/probe-vantages"
    error_message = "the table's ARN (and so the role's table permissions) names the home region"
  }
  assert {
    # The locals: the body as a whole holds alarm ARNs, unknown at plan.
    condition     = strcontains(jsonencode(local.vantage_widgets), "{Pop3Probe/opt-test,Monitor,Vantage}") && strcontains(jsonencode(local.dashboard_widgets[3].properties.metrics), "MonitorsPartial")
    error_message = "the dashboard shows per-vantage availability and partial conditions"
  }
}

run "no_vantage_no_vantage_environment" {
  command = plan
  assert {
    condition     = !contains(keys(aws_lambda_function.probe.environment[0].variables), "POP3_PROBE_VANTAGE") && !contains(keys(aws_lambda_function.probe.environment[0].variables), "POP3_PROBE_STATE_REGION")
    error_message = "a single-vantage stack's environment names no vantage and no state region"
  }
  assert {
    condition     = length(local.vantage_widgets) == 0 && !strcontains(jsonencode(local.dashboard_widgets[3].properties.metrics), "MonitorsPartial")
    error_message = "no vantage widgets on a single-vantage dashboard"
  }
}

run "refuses_a_vantage_name_the_function_refuses" {
  command = plan
  variables {
    vantage = "eu west 1"
  }
  expect_failures = [var.vantage]
}

run "refuses_state_table_region_for_the_modules_own_table" {
  command = plan
  variables {
    state_table_region = "us-east-1"
  }
  expect_failures = [var.state_table_region]
}
