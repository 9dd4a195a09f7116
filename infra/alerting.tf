# Two topics, so that one fault does not silence everything and each can
# be filtered the way its messages are built:
#   alerts  the probe's own messages (down, recovered, probe_error, ...),
#           with `status` and `category` message attributes;
#   alarms  the CloudWatch alarms (heartbeat per shard, Lambda errors, ...),
#           whose JSON body names the alarm and its state.
# Either can be the platform team's: alert_topic_arn replaces the first,
# alarm_actions/ok_actions (a pager, a central topic) the second.

locals {
  create_alert_topic = var.alert_topic_arn == null
  alert_topic_arn    = local.create_alert_topic ? aws_sns_topic.alerts[0].arn : var.alert_topic_arn

  create_alarm_topic = var.create_alarm_topic && var.alarm_actions == null
  # Default: the module's alarm topic, or else the alert topic.
  alarm_actions = var.alarm_actions != null ? var.alarm_actions : (
    local.create_alarm_topic ? [aws_sns_topic.alarms[0].arn] : [local.alert_topic_arn]
  )
  ok_actions = var.ok_actions != null ? var.ok_actions : local.alarm_actions

  # Subscriptions go to the topics the module created, and to a topic
  # given in alert_topic_arn only when the lists are non-empty (leave them
  # empty when the topic's owner manages its subscribers).
  subscribed_topics = merge(
    { alerts = local.alert_topic_arn },
    local.create_alarm_topic ? { alarms = aws_sns_topic.alarms[0].arn } : {},
  )
  email_subscriptions = { for p in setproduct(keys(local.subscribed_topics), var.alert_emails) : "${p[0]}:${p[1]}" => { topic = p[0], endpoint = p[1] } }
  sms_subscriptions   = { for p in setproduct(keys(local.subscribed_topics), var.alert_sms_numbers) : "${p[0]}:${p[1]}" => { topic = p[0], endpoint = p[1] } }

  # SMS from the alert topic (message attributes). The defaults pass the
  # mail service's outages and recoveries and the probe's own errors, and
  # hold back the probe's rejected login: a recovery carries the same
  # category as its outage, so a recovery whose outage was held back is
  # held back too (and sms_filter_statuses must list "down" wherever it
  # lists "recovered").
  sms_alert_filter = length(var.sms_filter_statuses) == 0 ? null : jsonencode(merge(
    { status = var.sms_filter_statuses },
    length(var.sms_exclude_categories) > 0 ? { category = [{ "anything-but" = var.sms_exclude_categories }] } : {}
  ))

  # SMS from the alarm topic (message body): the alarms named by
  # sms_alarm_suffixes (default: the per-shard heartbeats) entering ALARM
  # or OK. Every ALARM of these alarms passes, so no OK texted is the
  # recovery of an ALARM that was held back. (An alarm's first evaluation
  # after creation, INSUFFICIENT_DATA -> OK, is texted too; narrowing OK to
  # "from ALARM" needs an "$or" filter, and an OldStateValue condition
  # alone would also hold back a first ALARM.)
  sms_alarm_filter = jsonencode({
    AlarmName     = [for s in var.sms_alarm_suffixes : { prefix = "${var.name}-${s}" }]
    NewStateValue = ["ALARM", "OK"]
  })
}

resource "aws_sns_topic" "alerts" {
  count = local.create_alert_topic ? 1 : 0

  name              = "${var.name}-alerts"
  display_name      = "Mail probe"
  kms_master_key_id = local.kms_key_arn
  tags              = local.tags
}

resource "aws_sns_topic_policy" "alerts" {
  count = local.create_alert_topic ? 1 : 0

  arn    = aws_sns_topic.alerts[0].arn
  policy = data.aws_iam_policy_document.topic["alerts"].json
}

resource "aws_sns_topic" "alarms" {
  count = local.create_alarm_topic ? 1 : 0

  name              = "${var.name}-alarms"
  display_name      = "Mail probe alarms"
  kms_master_key_id = local.kms_key_arn
  tags              = local.tags
}

resource "aws_sns_topic_policy" "alarms" {
  count = local.create_alarm_topic ? 1 : 0

  arn    = aws_sns_topic.alarms[0].arn
  policy = data.aws_iam_policy_document.topic["alarms"].json
}

data "aws_iam_policy_document" "topic" {
  for_each = toset(concat(local.create_alert_topic ? ["alerts"] : [], local.create_alarm_topic ? ["alarms"] : []))

  # The account keeps managing its own topic (SNS's default statement).
  statement {
    sid = "AccountOwner"
    actions = [
      "SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
      "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish",
    ]
    resources = ["arn:${local.partition}:sns:${local.region}:${local.account_id}:${var.name}-${each.key}"]
    principals {
      type        = "AWS"
      identifiers = ["*"]
    }
    condition {
      test     = "StringEquals"
      variable = "AWS:SourceOwner"
      values   = [local.account_id]
    }
  }

  # Only this module's alarms may publish as CloudWatch.
  statement {
    sid       = "CloudWatchAlarms"
    actions   = ["SNS:Publish"]
    resources = ["arn:${local.partition}:sns:${local.region}:${local.account_id}:${var.name}-${each.key}"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name}-*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_subscription" "email" {
  for_each = local.email_subscriptions

  topic_arn = local.subscribed_topics[each.value.topic]
  protocol  = "email"
  endpoint  = each.value.endpoint
}

resource "aws_sns_topic_subscription" "sms" {
  for_each = local.sms_subscriptions

  topic_arn = local.subscribed_topics[each.value.topic]
  protocol  = "sms"
  endpoint  = each.value.endpoint

  # SMS costs money per message and wakes people up; e-mail receives
  # everything.
  filter_policy_scope = each.value.topic == "alarms" ? "MessageBody" : (local.sms_alert_filter == null ? null : "MessageAttributes")
  filter_policy       = each.value.topic == "alarms" ? local.sms_alarm_filter : local.sms_alert_filter
}
