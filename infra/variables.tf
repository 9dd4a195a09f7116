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
  description = "Path to the deployment zip built by `make lambda` (target/lambda/pop3-probe-lambda/bootstrap.zip). It must contain an executable named `bootstrap`."
  type        = string

  validation {
    condition     = can(regex("\\.zip$", var.lambda_zip))
    error_message = "lambda_zip must be the path of a .zip file (e.g. target/lambda/pop3-probe-lambda/bootstrap.zip)."
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
    condition     = var.timeout_seconds < local.schedule_interval_seconds
    error_message = "timeout_seconds must be below the schedule interval (see schedule_expression): a run still going when the next one starts would log in to the same mailboxes twice."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions of the function. null reserves one per shard (the runs of one schedule tick); -1 removes the reservation (needed on accounts whose concurrency quota is still 10: AWS keeps a minimum unreserved, so any reservation fails there)."
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
  description = "CloudWatch namespace the probe publishes to (POP3_PROBE_NAMESPACE). The role may publish only to this namespace."
  type        = string
  default     = "Pop3Probe"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metric_namespace)) && !startswith(var.metric_namespace, "AWS/")
    error_message = "metric_namespace must be 1-255 characters of letters, digits and . _ / # : - and must not start with \"AWS/\"."
  }
}

# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------

variable "schedule_expression" {
  description = "EventBridge Scheduler expression: rate(1 minute), rate(N minutes) with N from 2 to 60, rate(1 hour), or a six-field cron(...) that fires at least hourly (a cron with a fixed minute is taken as hourly)."
  type        = string
  default     = "rate(5 minutes)"

  validation {
    condition = (
      can(regex("^rate\\((1 minute|([2-9]|[1-5][0-9]|60) minutes|1 hour)\\)$", var.schedule_expression)) ||
      can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", var.schedule_expression))
    )
    error_message = "schedule_expression must be \"rate(1 minute)\", \"rate(N minutes)\", \"rate(1 hour)\" with N from 2 to 60 (singular unit for 1, plural otherwise) or a six-field \"cron(min hour day-of-month month day-of-week year)\", e.g. \"cron(*/5 * * * ? *)\"."
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
  description = "Name of the Secrets Manager secret that holds the monitor list and credentials (JSON). Its ARN is passed to the function as POP3_PROBE_CONFIG_SECRET."
  type        = string
  default     = "pop3-probe/config"

  validation {
    condition     = can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", var.config_secret_name))
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
  description = "Alert `status` message-attribute values delivered by SMS. Statuses: down, still_down, recovered, degraded, certificate_expiring, capability_changed, login_delay_conflict, probe_error (e-mail receives all). Empty list: SMS receives everything, including CloudWatch alarm notifications (which carry no `status` attribute and are otherwise filtered out)."
  type        = list(string)
  default     = ["down", "recovered"]

  validation {
    condition     = alltrue([for s in var.sms_filter_statuses : can(regex("^[a-z][a-z_]*$", s))])
    error_message = "sms_filter_statuses must be snake_case status names such as \"down\" or \"recovered\"."
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
  description = "Consecutive schedule intervals without any ProbeRuns datapoint before the heartbeat alarm fires."
  type        = number
  default     = 3

  validation {
    condition     = var.heartbeat_missed_runs >= 1 && var.heartbeat_missed_runs <= 24 && floor(var.heartbeat_missed_runs) == var.heartbeat_missed_runs
    error_message = "heartbeat_missed_runs must be a whole number between 1 and 24."
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
