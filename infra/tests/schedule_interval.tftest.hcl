# The schedule-interval derivation (main.tf) for rate() and cron() forms,
# and the schedules it must refuse to guess. Plan only, against a mocked
# provider: no AWS, no moto. Run by tests/run.sh (`terraform test`).
# One run block per expression; each assertion message names its
# expression.

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
}

variables {
  name      = "sched-test"
  s3_bucket = "artifacts-example"
  s3_key    = "pop3-probe/bootstrap.zip"
  # Below every interval tested.
  timeout_seconds = 30
}

run "derives_01" {
  command = plan
  variables {
    schedule_expression = "rate(1 minute)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 60
    error_message = "rate(1 minute): expected 60 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_02" {
  command = plan
  variables {
    schedule_expression = "rate(5 minutes)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 300
    error_message = "rate(5 minutes): expected 300 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_03" {
  command = plan
  variables {
    schedule_expression = "rate(60 minutes)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 3600
    error_message = "rate(60 minutes): expected 3600 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_04" {
  command = plan
  variables {
    schedule_expression = "rate(1 hour)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 3600
    error_message = "rate(1 hour): expected 3600 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_05" {
  command = plan
  variables {
    schedule_expression = "rate(6 hours)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 21600
    error_message = "rate(6 hours): expected 21600 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_06" {
  command = plan
  variables {
    schedule_expression = "rate(1 day)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 86400
    error_message = "rate(1 day): expected 86400 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_07" {
  command = plan
  variables {
    schedule_expression = "cron(* * * * ? *)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 60
    error_message = "cron(* * * * ? *): expected 60 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_08" {
  command = plan
  variables {
    schedule_expression = "cron(*/5 * * * ? *)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 300
    error_message = "cron(*/5 * * * ? *): expected 300 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_09" {
  command = plan
  variables {
    schedule_expression = "cron(0/15 * * * ? *)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 900
    error_message = "cron(0/15 * * * ? *): expected 900 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_10" {
  command = plan
  variables {
    schedule_expression = "cron(7/10 * * * ? *)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 600
    error_message = "cron(7/10 * * * ? *): expected 600 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_11" {
  command = plan
  variables {
    schedule_expression = "cron(0 * * * ? *)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 3600
    error_message = "cron(0 * * * ? *): expected 3600 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_12" {
  command = plan
  variables {
    schedule_expression = "cron(30 * ? * * *)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 3600
    error_message = "cron(30 * ? * * *): expected 3600 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_13" {
  command = plan
  variables {
    schedule_expression = "cron(0 */6 * * ? *)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 21600
    error_message = "cron(0 */6 * * ? *): expected 21600 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_14" {
  command = plan
  variables {
    schedule_expression = "cron(15 2/4 * * ? *)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 14400
    error_message = "cron(15 2/4 * * ? *): expected 14400 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_15" {
  command = plan
  variables {
    schedule_expression = "cron(0 */1 * * ? *)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 3600
    error_message = "cron(0 */1 * * ? *): expected 3600 s, got ${output.schedule_interval_seconds}"
  }
}

run "derives_16" {
  command = plan
  variables {
    schedule_expression = "cron(15 3 * * ? *)"
  }
  assert {
    condition     = output.schedule_interval_seconds == 86400
    error_message = "cron(15 3 * * ? *): expected 86400 s, got ${output.schedule_interval_seconds}"
  }
}

run "refuses_17" {
  command = plan
  variables {
    schedule_expression = "cron(*/7 * * * ? *)"
  }
  expect_failures = [var.schedule_seconds]
}

run "refuses_18" {
  command = plan
  variables {
    schedule_expression = "cron(0,30 * * * ? *)"
  }
  expect_failures = [var.schedule_seconds]
}

run "refuses_19" {
  command = plan
  variables {
    schedule_expression = "cron(0 9-17 * * ? *)"
  }
  expect_failures = [var.schedule_seconds]
}

run "refuses_20" {
  command = plan
  variables {
    schedule_expression = "cron(0 */5 * * ? *)"
  }
  expect_failures = [var.schedule_seconds]
}

run "refuses_21" {
  command = plan
  variables {
    schedule_expression = "cron(0 8 ? * MON-FRI *)"
  }
  expect_failures = [var.schedule_seconds]
}

run "refuses_22" {
  command = plan
  variables {
    schedule_expression = "cron(* */6 * * ? *)"
  }
  expect_failures = [var.schedule_seconds]
}

run "refuses_23" {
  command = plan
  variables {
    schedule_expression = "cron(0 0 1 * ? *)"
  }
  expect_failures = [var.schedule_seconds]
}

run "refuses_24" {
  command = plan
  variables {
    schedule_expression = "cron(12/10 * * * ? *)"
  }
  expect_failures = [var.schedule_seconds]
}

run "explicit_schedule_seconds_for_a_weekday_cron" {
  command = plan
  variables {
    schedule_expression = "cron(*/10 8-18 ? * MON-FRI *)"
    schedule_seconds    = 600
  }
  assert {
    condition     = output.schedule_interval_seconds == 600
    error_message = "schedule_seconds must be used as given"
  }
}

run "schedule_seconds_contradicting_a_rate_is_refused" {
  command = plan
  variables {
    schedule_expression = "rate(5 minutes)"
    schedule_seconds    = 600
  }
  expect_failures = [var.schedule_seconds]
}

run "more_than_a_day_is_refused" {
  command = plan
  variables {
    schedule_expression = "rate(2 days)"
  }
  expect_failures = [var.schedule_seconds]
}

run "six_hourly_cron_accepts_a_900s_timeout" {
  command = plan
  variables {
    schedule_expression = "cron(0 */6 * * ? *)"
    timeout_seconds     = 900
  }
  # 900 s is below 6 h: accepted (the old derivation read this cron as hourly).
  assert {
    condition     = output.schedule_interval_seconds == 21600
    error_message = "cron(0 */6 * * ? *) is six-hourly"
  }
}

run "timeout_not_below_the_interval_is_refused" {
  command = plan
  variables {
    schedule_expression = "cron(*/1 * * * ? *)"
    timeout_seconds     = 60
  }
  expect_failures = [var.timeout_seconds]
}
