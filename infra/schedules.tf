resource "aws_scheduler_schedule_group" "this" {
  name = local.schedule_group
  tags = local.tags
}

# Invocations that Scheduler could not deliver after its retries (throttled,
# function missing, permission denied) land here instead of vanishing.
resource "aws_sqs_queue" "dlq" {
  name                              = "${var.name}-schedule-dlq"
  message_retention_seconds         = var.dlq_message_retention_seconds
  kms_master_key_id                 = local.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
  tags                              = local.tags
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

data "aws_iam_policy_document" "dlq" {
  # Only our scheduler role may write to the queue.
  statement {
    sid       = "SchedulerDeadLetter"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
    principals {
      type        = "AWS"
      identifiers = [local.scheduler_role_arn]
    }
  }
}

# One schedule per shard; each run probes only the monitors of its shard.
resource "aws_scheduler_schedule" "shard" {
  count = var.shards

  name        = "${var.name}-shard-${count.index}"
  group_name  = aws_scheduler_schedule_group.this.name
  description = "Mail probe shard ${count.index} of ${var.shards}"

  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = var.schedule_timezone
  state                        = "ENABLED"
  kms_key_arn                  = local.kms_key_arn

  # Runs must be exactly one interval apart: the heartbeat alarm expects one
  # datapoint per shard per period, and timeout < interval prevents overlap.
  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = local.invoke_arn_target
    role_arn = local.scheduler_role_arn
    input    = jsonencode({ shard = count.index, shards = var.shards })

    retry_policy {
      # A tick older than one interval is superseded by the next one.
      maximum_event_age_in_seconds = local.max_event_age_seconds
      maximum_retry_attempts       = var.schedule_retry_attempts
    }

    dead_letter_config {
      arn = aws_sqs_queue.dlq.arn
    }
  }
}
