# ---------------------------------------------------------------------------
# Naming
# ---------------------------------------------------------------------------

variable "name" {
  description = "Name prefix for every resource (function, role, topic, table, schedules, alarms, dashboard)."
  type        = string
  default     = "pop3-probe"

  validation {
    # The tightest naming rule among the resources is the schedule group's and
    # the IAM role's: letters, digits, '-' and '_'; the longest suffix we add
    # is "-responsetime-" plus a monitor name, so keep the prefix short.
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{0,31}$", var.name))
    error_message = "name must start with a letter and contain only letters, digits, '-' or '_' (at most 32 characters)."
  }
}

variable "tags" {
  description = "Tags added to every taggable resource."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------
# Lambda
# ---------------------------------------------------------------------------

variable "lambda_zip" {
  description = "Path to the deployment zip built by `make lambda` (target/lambda/pop3-probe-lambda/bootstrap.zip). It must contain an executable named `bootstrap`. Give either this or s3_bucket/s3_key."
  type        = string
  default     = null

  validation {
    condition     = var.lambda_zip == null ? true : can(regex("\\.zip$", var.lambda_zip))
    error_message = "lambda_zip must be the path of a .zip file (e.g. target/lambda/pop3-probe-lambda/bootstrap.zip)."
  }

  validation {
    condition     = (var.lambda_zip == null) != (var.s3_bucket == null)
    error_message = "Give exactly one deployment artifact: lambda_zip (a local zip) or s3_bucket with s3_key."
  }
}

variable "s3_bucket" {
  description = "S3 bucket holding the deployment zip (instead of lambda_zip), in the function's region."
  type        = string
  default     = null

  validation {
    condition     = var.s3_bucket == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_bucket))
    error_message = "s3_bucket must be an S3 bucket name (3-63 lower-case letters, digits, '.' or '-')."
  }

  validation {
    condition     = (var.s3_bucket == null) == (var.s3_key == null)
    error_message = "s3_bucket and s3_key go together: set both or neither."
  }
}

variable "s3_key" {
  description = "Object key of the deployment zip in s3_bucket."
  type        = string
  default     = null
}

variable "s3_object_version" {
  description = "Version of the s3_key object (versioned buckets); a new version redeploys the function."
  type        = string
  default     = null
}

variable "source_code_hash" {
  description = "With s3_bucket: base64 SHA-256 of the zip (filebase64sha256), so that a new zip under the same key redeploys. Ignored with lambda_zip (computed from the file)."
  type        = string
  default     = null
}

variable "function_name" {
  description = "Name of the Lambda function (and of its log group /aws/lambda/<name>). null: `name`."
  type        = string
  default     = null

  validation {
    condition     = var.function_name == null ? true : can(regex("^[A-Za-z0-9_-]{1,64}$", var.function_name))
    error_message = "function_name may contain only letters, digits, '-' and '_' (1-64 characters)."
  }
}

variable "publish" {
  description = "Publish a version on every change and point the alias alias_name at it; the schedules then invoke the alias."
  type        = bool
  default     = false
}

variable "alias_name" {
  description = "Name of the alias the schedules invoke when publish = true."
  type        = string
  default     = "live"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9_-]{0,127}$", var.alias_name))
    error_message = "alias_name must start with a letter and contain only letters, digits, '-' and '_' (not a version number)."
  }
}

variable "tracing_mode" {
  description = "X-Ray tracing of the function: PassThrough (no traces of its own, no X-Ray permission) or Active (adds xray:PutTraceSegments and xray:PutTelemetryRecords on \"*\", the only scope X-Ray offers)."
  type        = string
  default     = "PassThrough"

  validation {
    condition     = contains(["PassThrough", "Active"], var.tracing_mode)
    error_message = "tracing_mode must be \"PassThrough\" or \"Active\"."
  }
}

variable "code_signing_config_arn" {
  description = "ARN of a Lambda code-signing config; the deployment zip must then be signed by one of its signing profiles (AWS Signer)."
  type        = string
  default     = null

  validation {
    condition     = var.code_signing_config_arn == null ? true : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:code-signing-config:csc-[a-z0-9]+$", var.code_signing_config_arn))
    error_message = "code_signing_config_arn must be a Lambda code-signing config ARN (arn:aws:lambda:REGION:ACCOUNT:code-signing-config:csc-...)."
  }
}

variable "on_failure_destination_arn" {
  description = "SQS queue or SNS topic ARN that receives invocations that failed (the function errored or timed out). The role may send only there."
  type        = string
  default     = null

  validation {
    condition     = var.on_failure_destination_arn == null ? true : can(regex("^arn:aws[a-z-]*:(sqs|sns):[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", var.on_failure_destination_arn))
    error_message = "on_failure_destination_arn must be an SQS queue or SNS topic ARN."
  }
}

variable "architecture" {
  description = "Instruction set of the function: arm64 (Graviton, about 20% cheaper per GB-second) or x86_64. Must match the target the zip was built for (`cargo lambda build --arm64`)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.architecture)
    error_message = "architecture must be \"arm64\" or \"x86_64\" (not \"amd64\" or \"aarch64\")."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB. The probe is I/O-bound; 128 MB is enough for dozens of monitors per shard."
  type        = number
  default     = 128

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240 && floor(var.memory_size) == var.memory_size
    error_message = "memory_size must be a whole number of MB between 128 and 10240."
  }
}

variable "timeout_seconds" {
  description = "Function timeout in seconds. Must stay below the schedule interval so that two runs of the same shard never overlap (POP3 locks a mailbox while a session is open)."
  type        = number
  default     = 50

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 900 && floor(var.timeout_seconds) == var.timeout_seconds
    error_message = "timeout_seconds must be a whole number between 1 and 900."
  }

  validation {
    condition     = local.schedule_interval_seconds == null ? true : var.timeout_seconds < local.schedule_interval_seconds
    error_message = "timeout_seconds must be below the schedule interval (see schedule_expression): a run still going when the next one starts would log in to the same mailboxes twice."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the function. null (default) or -1: unreserved (a reservation fails on accounts whose concurrency quota is still 10, since AWS keeps a minimum unreserved). A number >= shards guarantees that one tick of every shard can run at once; 0 disables the function."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrency == null ? true : (var.reserved_concurrency == -1 || (var.reserved_concurrency >= 0 && floor(var.reserved_concurrency) == var.reserved_concurrency))
    error_message = "reserved_concurrency must be null, -1 (unreserved) or a whole number >= 0 (0 disables the function)."
  }
}

variable "rust_log" {
  description = "Value of RUST_LOG for the function (tracing filter), e.g. \"info\" or \"info,pop3_probe=debug\"."
  type        = string
  default     = "info"

  validation {
    condition     = can(regex("^[A-Za-z0-9_:=,.-]+$", var.rust_log))
    error_message = "rust_log must be a tracing filter such as \"info\" or \"warn,pop3_probe=debug\" (no spaces)."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "metric_namespace" {
  description = "CloudWatch namespace the probe publishes to (POP3_PROBE_NAMESPACE). The role may publish only to this namespace. null: \"Pop3Probe/<name>\", so that two stacks never keep each other's heartbeat green."
  type        = string
  default     = null

  validation {
    condition     = var.metric_namespace == null ? true : (can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metric_namespace)) && !startswith(var.metric_namespace, "AWS/"))
    error_message = "metric_namespace must be 1-255 characters of letters, digits and . _ / # : - and must not start with \"AWS/\"."
  }
}

# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------

variable "schedule_expression" {
  description = "EventBridge Scheduler expression: rate(N minute(s)|hour(s)|day(s)) or a six-field cron(min hour day-of-month month day-of-week year). The interval (alarm period, timeout check) is derived from rate() and from evenly repeating cron() forms (\"*/5 * * * ? *\", \"0 */6 * * ? *\", \"15 3 * * ? *\"); any other cron needs schedule_seconds. Between 1 minute and 1 day."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition = (
      can(regex("^rate\\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\\)$", var.schedule_expression)) ||
      can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", var.schedule_expression))
    )
    error_message = "schedule_expression must be \"rate(1 minute)\", \"rate(N minutes)\", \"rate(N hours)\", \"rate(N days)\" (singular unit for 1, plural otherwise) or a six-field \"cron(min hour day-of-month month day-of-week year)\", e.g. \"cron(*/5 * * * ? *)\"."
  }
}

variable "schedule_seconds" {
  description = "Interval between two runs of one shard, in seconds, for a cron() whose interval cannot be derived (null: derived). Must agree with schedule_expression where it can be derived."
  type        = number
  default     = null

  validation {
    condition     = var.schedule_seconds == null ? true : (var.schedule_seconds >= 60 && var.schedule_seconds <= 86400 && var.schedule_seconds % 60 == 0)
    error_message = "schedule_seconds must be a whole number of minutes in seconds, between 60 and 86400."
  }

  validation {
    condition     = var.schedule_seconds == null || local.derived_interval_seconds == null ? true : var.schedule_seconds == local.derived_interval_seconds
    error_message = "schedule_seconds contradicts schedule_expression, whose interval the module derives itself: leave schedule_seconds null."
  }

  validation {
    condition     = var.schedule_seconds != null || local.derived_interval_seconds != null
    error_message = "The schedule interval cannot be derived from this schedule_expression (its runs are not evenly spaced, e.g. lists, ranges, weekdays or \"*/7\"): set schedule_seconds to the shortest gap between two runs."
  }

  validation {
    condition     = var.schedule_seconds != null || local.derived_interval_seconds == null ? true : (local.derived_interval_seconds >= 60 && local.derived_interval_seconds <= 86400)
    error_message = "The schedule must run at least once a day and at most once a minute (interval between 60 and 86400 seconds)."
  }
}

variable "schedule_group_name" {
  description = "EventBridge Scheduler group holding the schedules. null: `name`."
  type        = string
  default     = null

  validation {
    condition     = var.schedule_group_name == null ? true : can(regex("^[A-Za-z0-9._-]{1,64}$", var.schedule_group_name))
    error_message = "schedule_group_name may contain only letters, digits, '.', '_' and '-' (1-64 characters)."
  }
}

variable "schedule_timezone" {
  description = "Time zone for cron() schedules (IANA name)."
  type        = string
  default     = "UTC"

  validation {
    condition     = can(regex("^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$", var.schedule_timezone))
    error_message = "schedule_timezone must be an IANA time zone name such as \"UTC\" or \"Europe/Berlin\"."
  }
}

variable "shards" {
  description = "Number of shards. Each shard gets its own schedule invoking the function with {\"shard\": i, \"shards\": n}; the code probes only the monitors of its shard."
  type        = number
  default     = 1

  validation {
    condition     = var.shards >= 1 && var.shards <= 50 && floor(var.shards) == var.shards
    error_message = "shards must be a whole number between 1 and 50."
  }
}

variable "schedule_retry_attempts" {
  description = "How often EventBridge Scheduler retries an invocation it could not deliver (throttled, function missing) before sending it to the dead-letter queue."
  type        = number
  default     = 2

  validation {
    condition     = var.schedule_retry_attempts >= 0 && var.schedule_retry_attempts <= 185 && floor(var.schedule_retry_attempts) == var.schedule_retry_attempts
    error_message = "schedule_retry_attempts must be a whole number between 0 and 185."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long failed invocations stay in the dead-letter queue."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600 (14 days)."
  }
}

# ---------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------

variable "config_secret_name" {
  description = "Name of the Secrets Manager secret that holds the monitor list and credentials (JSON). Its ARN is passed to the function as POP3_PROBE_CONFIG_SECRET. null: \"<name>/config\"."
  type        = string
  default     = null

  validation {
    condition     = var.config_secret_name == null ? true : can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", var.config_secret_name))
    error_message = "config_secret_name may contain only letters, digits and / _ + = . @ - (1-512 characters)."
  }
}

variable "config_secret_value" {
  description = "Optional initial value of the config secret. Leave null and use `aws secretsmanager put-secret-value` (see README): a value set here is stored in the Terraform state in clear text."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.config_secret_value == null ? true : can(jsondecode(var.config_secret_value))
    error_message = "config_secret_value must be a JSON document."
  }
}

variable "account_secret_names" {
  description = "Names of extra per-account secrets (one POP3 password each) that the module creates empty and the function may read. Put their values with `aws secretsmanager put-secret-value`."
  type        = set(string)
  default     = []

  validation {
    condition     = alltrue([for n in var.account_secret_names : can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", n))])
    error_message = "account_secret_names may contain only letters, digits and / _ + = . @ - (1-512 characters each)."
  }
}

variable "extra_secret_arns" {
  description = "Existing secrets (managed elsewhere) that the function may read, as full ARNs or as names (a name is widened to its ARN with the random 6-character suffix Secrets Manager appends)."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([for s in var.extra_secret_arns : (
      can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$", s)) ||
      can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", s))
    )])
    error_message = "extra_secret_arns entries must be secret ARNs (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-xxxxxx) or secret names; no wildcards."
  }
}

# ---------------------------------------------------------------------------
# Alerting
# ---------------------------------------------------------------------------

variable "alert_emails" {
  description = "E-mail addresses subscribed to the alert topic (each must confirm the subscription)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "alert_emails must be e-mail addresses like ops@example.com."
  }
}

variable "alert_sms_numbers" {
  description = "Phone numbers in E.164 format (+4915112345678) subscribed to the alert topic by SMS."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for n in var.alert_sms_numbers : can(regex("^\\+[1-9][0-9]{6,14}$", n))])
    error_message = "alert_sms_numbers must be in E.164 format: '+', country code and number, no spaces (e.g. +4915112345678)."
  }
}

variable "sms_filter_statuses" {
  description = "Alert `status` message-attribute values of the alert topic delivered by SMS. Statuses: down, still_down, recovered, degraded, certificate_expiring, capability_changed, login_delay_conflict, probe_error (e-mail receives all). Empty list: SMS receives every probe alert. Alarm notifications are filtered separately (sms_alarm_suffixes)."
  type        = list(string)
  default     = ["down", "recovered", "probe_error"]

  validation {
    condition     = alltrue([for s in var.sms_filter_statuses : can(regex("^[a-z][a-z_]*$", s))])
    error_message = "sms_filter_statuses must be snake_case status names such as \"down\" or \"recovered\"."
  }

  validation {
    # A RECOVERED text with no DOWN before it is worse than none.
    condition     = !contains(var.sms_filter_statuses, "recovered") || contains(var.sms_filter_statuses, "down")
    error_message = "sms_filter_statuses lists \"recovered\" without \"down\": on-call would get recoveries of outages they were never told about. Add \"down\" or drop \"recovered\"."
  }
}

variable "sms_alarm_suffixes" {
  description = "Alarms of the alarm topic delivered by SMS, by name after \"<name>-\" (a prefix match: \"heartbeat\" covers every heartbeat-shard-N). Each goes out when it enters ALARM and when it returns to OK from ALARM."
  type        = list(string)
  default     = ["heartbeat"]

  validation {
    condition     = alltrue([for s in var.sms_alarm_suffixes : can(regex("^[a-z][a-z0-9-]*$", s))])
    error_message = "sms_alarm_suffixes must be alarm name suffixes such as \"heartbeat\" or \"lambda-errors\"."
  }
}

variable "sms_exclude_categories" {
  description = "Alert `category` message-attribute values never sent by SMS (with a non-empty sms_filter_statuses). The default keeps the on-call phone quiet when only the probe's own technical account is rejected (`credentials`); those alerts still reach e-mail. Categories: service, credentials, probe."
  type        = list(string)
  default     = ["credentials"]

  validation {
    condition     = alltrue([for c in var.sms_exclude_categories : contains(["service", "credentials", "probe"], c)])
    error_message = "sms_exclude_categories may contain only \"service\", \"credentials\" and \"probe\"."
  }
}

# ---------------------------------------------------------------------------
# Alarms
# ---------------------------------------------------------------------------

variable "heartbeat_missed_runs" {
  description = "Consecutive schedule intervals without a ProbeRuns datapoint of a shard before that shard's heartbeat alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.heartbeat_missed_runs >= 1 && var.heartbeat_missed_runs <= 24 && floor(var.heartbeat_missed_runs) == var.heartbeat_missed_runs
    error_message = "heartbeat_missed_runs must be a whole number between 1 and 24."
  }

  validation {
    # CloudWatch refuses an alarm whose evaluation window (periods x
    # period) is longer than one day for periods under an hour, or seven
    # days otherwise.
    condition     = local.schedule_interval_seconds == null ? true : var.heartbeat_missed_runs * local.schedule_interval_seconds <= (local.schedule_interval_seconds < 3600 ? 86400 : 604800)
    error_message = "heartbeat_missed_runs x the schedule interval is longer than CloudWatch allows an alarm to look back (1 day for intervals under an hour, 7 days otherwise): lower heartbeat_missed_runs."
  }
}

variable "lambda_errors_threshold" {
  description = "The Errors alarm fires when the function reports more errors than this in one schedule interval."
  type        = number
  default     = 0

  validation {
    condition     = var.lambda_errors_threshold >= 0 && floor(var.lambda_errors_threshold) == var.lambda_errors_threshold
    error_message = "lambda_errors_threshold must be a whole number >= 0."
  }
}

variable "duration_alarm_ratio" {
  description = "The Duration alarm fires when the longest run exceeds this fraction of the timeout (0.8 = 80%)."
  type        = number
  default     = 0.8

  validation {
    condition     = var.duration_alarm_ratio > 0 && var.duration_alarm_ratio < 1
    error_message = "duration_alarm_ratio is a fraction of the timeout: greater than 0 and less than 1 (e.g. 0.8, not 80)."
  }
}

variable "monitors_down_threshold" {
  description = "The fleet alarm fires when more than this many monitors are down (summed over the shards of one run)."
  type        = number
  default     = 0

  validation {
    condition     = var.monitors_down_threshold >= 0 && floor(var.monitors_down_threshold) == var.monitors_down_threshold
    error_message = "monitors_down_threshold must be a whole number >= 0."
  }
}

variable "availability_alarm_monitors" {
  description = "Monitor names (the `Monitor` dimension) that get their own Availability alarm. Each alarm costs $0.10/month."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.availability_alarm_monitors : can(regex("^[A-Za-z0-9._-]{1,64}$", m))])
    error_message = "availability_alarm_monitors must be monitor names of letters, digits, '.', '_' or '-' (1-64 characters)."
  }
}

variable "response_time_alarm_monitors" {
  description = "Map of monitor name to ResponseTime threshold in milliseconds; each entry gets a ResponseTime alarm."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for m, t in var.response_time_alarm_monitors : can(regex("^[A-Za-z0-9._-]{1,64}$", m)) && t > 0 && t <= 900000])
    error_message = "response_time_alarm_monitors maps monitor names (letters, digits, '.', '_', '-') to thresholds in milliseconds between 1 and 900000 (e.g. { \"mail-example\" = 2000 }, not seconds)."
  }
}

variable "monitor_alarm_datapoints" {
  description = "M in \"M out of N\": how many of the last monitor_alarm_periods runs must be bad before a per-monitor alarm fires."
  type        = number
  default     = 2

  validation {
    condition     = var.monitor_alarm_datapoints >= 1 && floor(var.monitor_alarm_datapoints) == var.monitor_alarm_datapoints && var.monitor_alarm_datapoints <= var.monitor_alarm_periods
    error_message = "monitor_alarm_datapoints must be a whole number between 1 and monitor_alarm_periods."
  }
}

variable "monitor_alarm_periods" {
  description = "N in \"M out of N\": how many runs a per-monitor alarm looks at."
  type        = number
  default     = 3

  validation {
    condition     = var.monitor_alarm_periods >= 1 && var.monitor_alarm_periods <= 24 && floor(var.monitor_alarm_periods) == var.monitor_alarm_periods
    error_message = "monitor_alarm_periods must be a whole number between 1 and 24."
  }

  validation {
    condition     = local.schedule_interval_seconds == null ? true : var.monitor_alarm_periods * local.schedule_interval_seconds <= (local.schedule_interval_seconds < 3600 ? 86400 : 604800)
    error_message = "monitor_alarm_periods x the schedule interval is longer than CloudWatch allows an alarm to look back (1 day for intervals under an hour, 7 days otherwise)."
  }
}

# ---------------------------------------------------------------------------
# Encryption
# ---------------------------------------------------------------------------

variable "kms_deletion_window_days" {
  description = "Waiting period before the module's KMS key is deleted after `terraform destroy`."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_days >= 7 && var.kms_deletion_window_days <= 30 && floor(var.kms_deletion_window_days) == var.kms_deletion_window_days
    error_message = "kms_deletion_window_days must be a whole number between 7 and 30."
  }
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored. 0 deletes at once (for test stacks only)."
  type        = number
  default     = 7

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or a whole number between 7 and 30."
  }
}

variable "metrics_pending_runs" {
  description = "Consecutive runs with MetricsPending > 0 (values the probe could not publish yet and keeps for the next run) before the metrics-pending alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.metrics_pending_runs >= 1 && var.metrics_pending_runs <= 24 && floor(var.metrics_pending_runs) == var.metrics_pending_runs
    error_message = "metrics_pending_runs must be a whole number between 1 and 24."
  }

  validation {
    condition     = local.schedule_interval_seconds == null ? true : var.metrics_pending_runs * local.schedule_interval_seconds <= (local.schedule_interval_seconds < 3600 ? 86400 : 604800)
    error_message = "metrics_pending_runs x the schedule interval is longer than CloudWatch allows an alarm to look back (1 day for intervals under an hour, 7 days otherwise)."
  }
}

variable "alarm_actions" {
  description = "ARNs notified when an alarm enters ALARM (SNS topics, e.g. a pager's). null: the module's alarm topic (create_alarm_topic), or else the alert topic."
  type        = list(string)
  default     = null

  validation {
    condition     = var.alarm_actions == null ? true : alltrue([for a in var.alarm_actions : startswith(a, "arn:")])
    error_message = "alarm_actions must be a list of ARNs (e.g. SNS topic ARNs)."
  }
}

variable "ok_actions" {
  description = "ARNs notified when an alarm returns to OK. null: the same as alarm_actions; [] sends no OK notifications."
  type        = list(string)
  default     = null

  validation {
    condition     = var.ok_actions == null ? true : alltrue([for a in var.ok_actions : startswith(a, "arn:")])
    error_message = "ok_actions must be a list of ARNs (e.g. SNS topic ARNs)."
  }
}

variable "create_alarm_topic" {
  description = "Create the topic \"<name>-alarms\" for the CloudWatch alarms (subscribed by alert_emails and, filtered, alert_sms_numbers). Ignored when alarm_actions is set; false sends alarms to the alert topic."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------
# Bring your own
# ---------------------------------------------------------------------------

variable "kms_key_arn" {
  description = "Customer managed KMS key to use instead of creating one (topics, secrets, table, logs, queue, schedules, environment). Its key policy must grant what the output kms_key_policy_json grants (see README)."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null ? true : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias."
  }
}

variable "extra_kms_key_arns" {
  description = "KMS keys that encrypt secrets in extra_secret_arns (managed elsewhere); the function may Decrypt with them."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.extra_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", k))])
    error_message = "extra_kms_key_arns must be KMS key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID), not aliases."
  }
}

variable "alert_topic_arn" {
  description = "Existing SNS topic for the probe's alerts instead of the module's \"<name>-alerts\". Its policy must let the function's role publish (and its key, if encrypted, be usable by the role). alert_emails/alert_sms_numbers subscribe to it only if non-empty."
  type        = string
  default     = null

  validation {
    condition     = var.alert_topic_arn == null ? true : can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$", var.alert_topic_arn))
    error_message = "alert_topic_arn must be an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)."
  }
}

variable "create_state_table" {
  description = "Create the DynamoDB state table. false: use the existing table state_table_name (hash key \"monitor\", type S), e.g. a global table shared by stacks in several regions."
  type        = bool
  default     = true

  validation {
    condition     = var.create_state_table || var.state_table_name != null
    error_message = "create_state_table = false needs state_table_name (the existing table to use)."
  }
}

variable "state_table_name" {
  description = "Name of the DynamoDB state table. null: \"<name>-state\"."
  type        = string
  default     = null

  validation {
    condition     = var.state_table_name == null ? true : can(regex("^[A-Za-z0-9_.-]{3,255}$", var.state_table_name))
    error_message = "state_table_name may contain only letters, digits, '_', '.' and '-' (3-255 characters)."
  }
}

# ---------------------------------------------------------------------------
# Vantages: the module in several regions, deciding together (docs/vantages.md)
# ---------------------------------------------------------------------------

variable "vantage" {
  description = "Vantage name of this deployment (POP3_PROBE_VANTAGE): set it in each region of a multi-region deployment sharing one state table (see examples/multi-region and docs/vantages.md); an outage is then alerted when a quorum of the vantages sees it. null: a single vantage, the region's own state machine decides."
  type        = string
  default     = null

  validation {
    # The rule of consensus::validate_vantage_name in src/consensus.rs: a
    # name the function would refuse at start-up is refused at plan time.
    condition     = var.vantage == null ? true : can(regex("^[A-Za-z0-9._-]{1,64}$", var.vantage))
    error_message = "vantage must be 1 to 64 characters of A-Z a-z 0-9 - _ . (e.g. the region name \"eu-west-1\")."
  }
}

variable "state_table_region" {
  description = "Region of the existing state table (create_state_table = false) when it is not the function's own, e.g. the home region that every vantage shares (POP3_PROBE_STATE_REGION; the role's table permissions name that region). null: the function's region."
  type        = string
  default     = null

  validation {
    condition     = var.state_table_region == null ? true : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.state_table_region))
    error_message = "state_table_region must be an AWS region name such as \"us-east-1\"."
  }

  validation {
    # The module creates its own table in its own region; pointing the
    # function elsewhere would leave that table unused and the other missing.
    condition     = var.state_table_region == null || !var.create_state_table
    error_message = "state_table_region is the region of an existing table: set create_state_table = false and state_table_name (the module creates its own table in the function's region)."
  }
}

# ---------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------

variable "create_role" {
  description = "Create the function's and the scheduler's roles. false: bring your own (lambda_role_arn, scheduler_role_arn); the module then creates no IAM resource, and the outputs lambda_role_policy_json / scheduler_role_policy_json show what the roles need."
  type        = bool
  default     = true

  validation {
    condition     = var.create_role || (var.lambda_role_arn != null && var.scheduler_role_arn != null)
    error_message = "create_role = false needs lambda_role_arn and scheduler_role_arn."
  }
}

variable "lambda_role_arn" {
  description = "Execution role of the function when create_role = false (trusted by lambda.amazonaws.com)."
  type        = string
  default     = null

  validation {
    condition     = var.lambda_role_arn == null ? true : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.lambda_role_arn))
    error_message = "lambda_role_arn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/PATH/NAME)."
  }
}

variable "scheduler_role_arn" {
  description = "Role EventBridge Scheduler assumes to invoke the function when create_role = false (trusted by scheduler.amazonaws.com)."
  type        = string
  default     = null

  validation {
    condition     = var.scheduler_role_arn == null ? true : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.scheduler_role_arn))
    error_message = "scheduler_role_arn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/PATH/NAME)."
  }
}

variable "role_permissions_boundary" {
  description = "ARN of the managed policy set as permissions boundary of both roles (organisations often deny iam:CreateRole without one)."
  type        = string
  default     = null

  validation {
    condition     = var.role_permissions_boundary == null ? true : can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.role_permissions_boundary))
    error_message = "role_permissions_boundary must be a managed policy ARN (arn:aws:iam::ACCOUNT:policy/NAME)."
  }
}

variable "role_path" {
  description = "IAM path of both roles, e.g. \"/workloads/\"."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x7e]{0,510}/)?$", var.role_path)) && !strcontains(var.role_path, "//")
    error_message = "role_path must start and end with '/' (e.g. \"/\" or \"/workloads/probe/\")."
  }
}

variable "role_name_prefix" {
  description = "Prefix of the role names (\"<prefix>lambda\", \"<prefix>scheduler\"). IAM is global, so the default \"<name>-<region>-\" lets the same name run in several regions."
  type        = string
  default     = null

  validation {
    condition     = var.role_name_prefix == null ? true : can(regex("^[A-Za-z0-9+=,.@_-]{1,54}$", var.role_name_prefix))
    error_message = "role_name_prefix may contain only letters, digits and + = , . @ _ - (at most 54 characters, leaving room for \"scheduler\")."
  }
}

# ---------------------------------------------------------------------------
# VPC
# ---------------------------------------------------------------------------

variable "vpc_subnet_ids" {
  description = "Private subnets to place the function in (empty: no VPC). The subnets need a route to the mail servers and to the AWS APIs: a NAT gateway, or interface endpoints (see README)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.vpc_subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "vpc_subnet_ids must be subnet IDs (subnet-0123abcd...)."
  }
}

variable "vpc_security_group_ids" {
  description = "Security groups of the function in the VPC. Empty: the module creates one with no inbound rule and outbound TCP to vpc_egress_ports only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.vpc_security_group_ids : can(regex("^sg-[0-9a-f]+$", g))])
    error_message = "vpc_security_group_ids must be security group IDs (sg-0123abcd...)."
  }

  validation {
    condition     = length(var.vpc_security_group_ids) == 0 || length(var.vpc_subnet_ids) > 0
    error_message = "vpc_security_group_ids without vpc_subnet_ids: give the subnets too."
  }
}

variable "vpc_egress_ports" {
  description = "TCP ports the module's security group allows outbound: POP3 (110, 995), SMTP (25, 465, 587) and HTTPS (443: AWS APIs, OAuth2 token endpoints). Add the ports of tcp monitors."
  type        = list(number)
  default     = [25, 110, 443, 465, 587, 995]

  validation {
    condition     = length(var.vpc_egress_ports) > 0 && alltrue([for p in var.vpc_egress_ports : p >= 1 && p <= 65535 && floor(p) == p])
    error_message = "vpc_egress_ports must be TCP port numbers between 1 and 65535."
  }
}

variable "vpc_egress_cidrs" {
  description = "IPv4 destinations the module's security group allows outbound (to vpc_egress_ports). Narrow it to the mail servers' and endpoints' networks where you can."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.vpc_egress_cidrs) > 0 && alltrue([for c in var.vpc_egress_cidrs : can(cidrhost(c, 0))])
    error_message = "vpc_egress_cidrs must be IPv4 CIDR blocks such as 10.0.0.0/8."
  }
}
