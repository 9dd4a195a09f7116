//! AWS adapters: Secrets Manager, CloudWatch, SNS, DynamoDB. Every call here
//! must be allowed by the IAM policy in infra/iam.tf, and nothing more is
//! allowed there: `infra/tests` checks the two against each other.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure,
};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::DateTime;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::alert::{Alert, MonitorState};
use crate::credentials::SecretSource;
use crate::ports::{
    AlertSink, Datum, MetricsSink, PublishReport, SaveReport, SinkError, StateChanges, StateStore,
    Unit,
};

/// An SDK error as one readable line (code and message, no request body).
pub(crate) fn describe<E: std::error::Error>(e: &E) -> String {
    DisplayErrorContext(e).to_string()
}

/// A try of one AWS call may take this long (connect included)...
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1500);
/// ...and the call with its retries this long: no more than the smallest
/// safety margin the Lambda keeps for delivery (`lambda::safety_margin`),
/// so one slow call cannot eat the time the state save needs.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(2);
/// Tries per call, backoff between them (throttling, 5xx, timeouts): the
/// SDK's standard retry strategy, for every client.
pub const MAX_ATTEMPTS: u32 = 3;

/// The SDK configuration every client of the probe uses: the usual
/// credential and region chain, with the timeouts and retries above.
pub async fn sdk_config() -> aws_config::SdkConfig {
    with_limits(aws_config::defaults(aws_config::BehaviorVersion::latest()))
        .load()
        .await
}

/// Apply the probe's timeouts and retry policy to an SDK config loader
/// (tests point the loader at moto first).
pub fn with_limits(loader: aws_config::ConfigLoader) -> aws_config::ConfigLoader {
    loader
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(1)),
        )
}

/// The state table's client: in `region` when given (vantages in several
/// regions share one table in a home region, `POP3_PROBE_STATE_REGION`),
/// else in the SDK config's own region.
pub fn dynamodb_in(sdk: &aws_config::SdkConfig, region: Option<&str>) -> aws_sdk_dynamodb::Client {
    match region.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .region(aws_sdk_dynamodb::config::Region::new(r.to_string()))
                .build(),
        ),
        None => aws_sdk_dynamodb::Client::new(sdk),
    }
}

/// The SNS client for a topic: SNS takes a Publish only in the topic's own
/// region, so vantages elsewhere publish to the home region's topic. The
/// region is the ARN's fourth field (arn:aws:sns:REGION:ACCOUNT:NAME).
pub fn sns_for_topic(sdk: &aws_config::SdkConfig, topic_arn: &str) -> aws_sdk_sns::Client {
    let region = topic_arn.split(':').nth(3).filter(|r| !r.is_empty());
    match region {
        Some(r) if Some(r) != sdk.region().map(|x| x.as_ref()) => aws_sdk_sns::Client::from_conf(
            aws_sdk_sns::config::Builder::from(sdk)
                .region(aws_sdk_sns::config::Region::new(r.to_string()))
                .build(),
        ),
        _ => aws_sdk_sns::Client::new(sdk),
    }
}

/// Secrets Manager, with a TTL cache so a warm Lambda does not re-read every
/// secret every minute, but does see a rotated password soon.
pub struct AwsSecrets {
    client: aws_sdk_secretsmanager::Client,
    ttl: Mutex<Duration>,
    cache: Mutex<HashMap<String, (SecretString, Instant)>>,
}

impl AwsSecrets {
    pub fn new(client: aws_sdk_secretsmanager::Client, ttl: Duration) -> Self {
        AwsSecrets {
            client,
            ttl: Mutex::new(ttl),
            cache: Mutex::new(HashMap::new()),
        }
    }
}

impl SecretSource for AwsSecrets {
    fn set_ttl(&self, ttl: Duration) {
        if let Ok(mut t) = self.ttl.lock() {
            *t = ttl;
        }
    }

    async fn secret(&self, id: &str) -> Result<SecretString, SinkError> {
        let ttl = self.ttl.lock().map(|t| *t).unwrap_or_default();
        let cached = self.cache.lock().ok().and_then(|c| c.get(id).cloned());
        if let Some((value, at)) = &cached {
            if at.elapsed() < ttl {
                return Ok(value.clone());
            }
        }
        match self.fetch(id).await {
            Ok(value) => {
                if let Ok(mut c) = self.cache.lock() {
                    c.insert(id.to_string(), (value.clone(), Instant::now()));
                }
                Ok(value)
            }
            // Unreachable or throttled: the last value read is better than
            // none (a rotation shows up on the next good read). A secret
            // that is gone or forbidden is reported as such.
            Err(e) if e.transient && cached.is_some() => {
                tracing::warn!(secret = id, error = %e, "using the last value read");
                Ok(cached
                    .map(|(v, _)| v)
                    .unwrap_or_else(|| SecretString::from(String::new())))
            }
            Err(e) => Err(e),
        }
    }
}

impl AwsSecrets {
    async fn fetch(&self, id: &str) -> Result<SecretString, SinkError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| {
                let code = e
                    .as_service_error()
                    .map(|s| s.meta().code().unwrap_or_default().to_string())
                    .unwrap_or_default();
                match code.as_str() {
                    "ResourceNotFoundException" => {
                        SinkError::new("secretsmanager", format!("secret {id} does not exist"))
                    }
                    "AccessDeniedException" => {
                        SinkError::new("secretsmanager", format!("not allowed to read secret {id}"))
                    }
                    _ => SinkError::transient(
                        "secretsmanager",
                        format!("reading secret {id}: {}", describe(&e)),
                    ),
                }
            })?;
        let value = out.secret_string().ok_or_else(|| {
            SinkError::new(
                "secretsmanager",
                format!("secret {id} has no string value (binary secrets are not supported)"),
            )
        })?;
        Ok(SecretString::from(value.to_string()))
    }
}

/// CloudWatch PutMetricData, batched within the API's limits. Retries are
/// the SDK's (see [`with_limits`]).
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
}

/// PutMetricData requests in flight at once.
const METRIC_REQUESTS_IN_FLIGHT: usize = 4;

/// The API allows 1,000 values and 1 MB per request; stay under both, with
/// room for the request's own overhead.
pub const MAX_VALUES_PER_REQUEST: usize = 1000;
pub const MAX_BYTES_PER_REQUEST: usize = 900_000;

/// A generous estimate of one value's size in the query-protocol body.
pub fn encoded_size(d: &Datum) -> usize {
    let dimension = |v: &Option<String>| v.as_ref().map(|m| 3 * m.len() + 80).unwrap_or(0);
    160 + d.name.len() * 2 + dimension(&d.monitor) + dimension(&d.vantage)
}

/// Split values into requests that respect both limits.
pub fn batches(data: Vec<Datum>) -> Vec<Vec<Datum>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for d in data {
        let size = encoded_size(&d);
        if !current.is_empty()
            && (current.len() == MAX_VALUES_PER_REQUEST || bytes + size > MAX_BYTES_PER_REQUEST)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(d);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

impl CloudWatchMetrics {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        CloudWatchMetrics { client }
    }

    fn datum(d: &Datum) -> MetricDatum {
        let unit = match d.unit {
            Unit::Milliseconds => StandardUnit::Milliseconds,
            Unit::Count => StandardUnit::Count,
            Unit::Bytes => StandardUnit::Bytes,
            Unit::None => StandardUnit::None,
        };
        let mut b = MetricDatum::builder()
            .metric_name(&d.name)
            .value(d.value)
            .unit(unit)
            .timestamp(DateTime::from_millis(d.timestamp_ms));
        if let Some(m) = &d.monitor {
            b = b.dimensions(Dimension::builder().name("Monitor").value(m).build());
        }
        if let Some(v) = &d.vantage {
            b = b.dimensions(Dimension::builder().name("Vantage").value(v).build());
        }
        if let Some(shard) = d.shard {
            b = b.dimensions(
                Dimension::builder()
                    .name("Shard")
                    .value(shard.to_string())
                    .build(),
            );
        }
        b.build()
    }
}

impl MetricsSink for CloudWatchMetrics {
    async fn publish(&self, namespace: &str, data: Vec<Datum>) -> PublishReport {
        use futures::StreamExt as _;
        let sent: Vec<_> = futures::stream::iter(batches(data))
            .map(|batch| async move {
                let r = self
                    .client
                    .put_metric_data()
                    .namespace(namespace)
                    .set_metric_data(Some(batch.iter().map(Self::datum).collect()))
                    .send()
                    .await;
                (batch, r)
            })
            .buffer_unordered(METRIC_REQUESTS_IN_FLIGHT)
            .collect()
            .await;
        let mut report = PublishReport::default();
        for (batch, r) in sent {
            report.requests += 1;
            match r {
                Ok(_) => report.published += batch.len(),
                Err(e) => {
                    report.errors.push(format!(
                        "PutMetricData ({} values, after up to {MAX_ATTEMPTS} tries): {}",
                        batch.len(),
                        describe(&e)
                    ));
                    report.failed.extend(batch);
                }
            }
        }
        report
    }
}

/// SNS with one message in three shapes (MessageStructure=json).
pub struct SnsAlerts {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsAlerts {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsAlerts {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

/// SNS subjects must be ASCII without control characters, under 100
/// characters: the alert module's one rule for subjects.
pub fn sns_subject(s: &str) -> String {
    crate::alert::subject_line(s)
}

/// The JSON message body: per-protocol texts.
pub fn sns_message(alert: &Alert) -> String {
    serde_json::json!({
        "default": alert.body,
        "email": alert.body,
        "email-json": alert.body,
        "sms": alert.sms,
        "sqs": alert.body,
        "lambda": alert.body,
        "https": alert.body,
    })
    .to_string()
}

fn string_attribute(v: &str) -> Result<MessageAttributeValue, SinkError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .map_err(|e| SinkError::new("sns", e.to_string()))
}

impl AlertSink for SnsAlerts {
    async fn send(&self, alert: &Alert) -> Result<(), SinkError> {
        let out = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message_structure("json")
            .message(sns_message(alert))
            .subject(sns_subject(&alert.subject))
            .message_attributes("severity", string_attribute(alert.severity())?)
            .message_attributes("monitor", string_attribute(&alert.monitor)?)
            .message_attributes("status", string_attribute(alert.kind.as_str())?)
            .message_attributes("category", string_attribute(alert.category.as_str())?)
            .message_attributes(
                "cause",
                string_attribute(alert.cause.map(|c| c.as_str()).unwrap_or("none"))?,
            )
            .send()
            .await
            .map_err(|e| {
                SinkError::transient(
                    "sns",
                    format!("Publish to {}: {}", self.topic_arn, describe(&e)),
                )
            })?;
        if out.message_id().is_none() {
            return Err(SinkError::transient(
                "sns",
                "Publish returned no message id",
            ));
        }
        Ok(())
    }
}

/// Alert state in DynamoDB: one item per monitor, key `monitor`.
pub struct DynamoState {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Unpublished metrics that could not be stored either (the table was
    /// unreachable too), per shard: kept in memory, which a warm Lambda keeps.
    fallback: Mutex<HashMap<u32, Vec<Datum>>>,
}

/// The row of a shard's unpublished metrics: one per shard, so that
/// concurrent shards never publish each other's values twice.
pub fn pending_key(shard: u32) -> String {
    format!("#pending-metrics:{shard}")
}

/// Conditional state puts in flight at once.
const PUTS_IN_FLIGHT: usize = 32;
/// Batch reads in flight at once.
const BATCHES_IN_FLIGHT: usize = 8;
/// Rounds of retrying what DynamoDB left unprocessed (throttling).
const UNPROCESSED_ROUNDS: u32 = 5;

/// The items of `table` keyed `monitor` = each of `names` (those that
/// exist): BatchGetItem in chunks of 100, several in flight, following
/// UnprocessedKeys with backoff. `consistent`: a strongly consistent read
/// (the vantages' conditional writes need it; the state rows, written by
/// one run at a time, do not).
pub async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    names: &[String],
    consistent: bool,
) -> Result<Vec<HashMap<String, AttributeValue>>, SinkError> {
    use futures::StreamExt as _;
    // BatchGetItem refuses a request that names a key twice.
    let mut unique: Vec<&String> = names.iter().collect();
    unique.sort();
    unique.dedup();
    let owned: Vec<Vec<String>> = unique
        .chunks(100)
        .map(|c| c.iter().map(|n| (*n).clone()).collect())
        .collect();
    let chunks: Vec<Result<Vec<_>, SinkError>> = futures::stream::iter(owned)
        .map(|chunk| async move { batch_get_chunk(client, table, &chunk, consistent).await })
        .buffer_unordered(BATCHES_IN_FLIGHT)
        .collect()
        .await;
    let mut items = Vec::new();
    for c in chunks {
        items.extend(c?);
    }
    Ok(items)
}

async fn batch_get_chunk(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    chunk: &[String],
    consistent: bool,
) -> Result<Vec<HashMap<String, AttributeValue>>, SinkError> {
    let mut items = Vec::new();
    let mut request = KeysAndAttributes::builder()
        .set_keys(Some(chunk.iter().map(|n| DynamoState::key(n)).collect()))
        .consistent_read(consistent)
        .build()
        .map_err(|e| SinkError::new("dynamodb", e.to_string()))?;
    let mut delay = Duration::from_millis(50);
    for round in 0.. {
        let out = client
            .batch_get_item()
            .request_items(table, request.clone())
            .send()
            .await
            .map_err(|e| {
                SinkError::transient(
                    "dynamodb",
                    format!("BatchGetItem on {table}: {}", describe(&e)),
                )
            })?;
        if let Some(found) = out.responses().and_then(|r| r.get(table)) {
            items.extend(found.iter().cloned());
        }
        match out.unprocessed_keys().and_then(|u| u.get(table)) {
            Some(rest) if !rest.keys().is_empty() => {
                if round == UNPROCESSED_ROUNDS {
                    return Err(SinkError::transient(
                        "dynamodb",
                        format!(
                            "BatchGetItem left keys unprocessed after {UNPROCESSED_ROUNDS} retries"
                        ),
                    ));
                }
                request = rest.clone();
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            _ => break,
        }
    }
    Ok(items)
}

impl DynamoState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoState {
            client,
            table: table.into(),
            fallback: Mutex::new(HashMap::new()),
        }
    }

    fn key(name: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("monitor".to_string(), AttributeValue::S(name.to_string()))])
    }

    async fn get_many(
        &self,
        names: &[String],
    ) -> Result<Vec<HashMap<String, AttributeValue>>, SinkError> {
        batch_get(&self.client, &self.table, names, false).await
    }
}

/// What one conditional put of a save is for: a monitor's state over the
/// version it follows, or (`None`) the shard's pending-metrics row.
type Expected = Option<(String, u64)>;

/// Make `put` write only over version `expected` of its row: where there
/// is no row when `expected` is 0, else where the stored `version` is
/// `expected`. The rule of the state save (`check_version`'s: versions
/// start at 1, so no stored row is at 0) and of the vantage store's
/// consensus items alike.
pub(crate) fn over_version(
    put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    expected: u64,
) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
    if expected == 0 {
        put.condition_expression("attribute_not_exists(#m)")
            .expression_attribute_names("#m", "monitor")
    } else {
        put.condition_expression("#v = :expected")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":expected", AttributeValue::N(expected.to_string()))
    }
}

/// `state` over exactly `state.version - 1` ([`over_version`]). The stored
/// row comes back when the condition fails, so the error can name its
/// version.
fn state_put(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    state: &MonitorState,
) -> Result<
    (
        aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
        Expected,
    ),
    SinkError,
> {
    let expected = state.version.saturating_sub(1);
    let put = client
        .put_item()
        .table_name(table)
        .set_item(Some(state_item(state)?))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    Ok((
        over_version(put, expected),
        Some((state.monitor.clone(), expected)),
    ))
}

/// Send one put of a save. A failed condition is the version conflict,
/// worded as `check_version` words it, with the version found.
async fn send_put(
    put: aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder,
    expected: Expected,
    table: &str,
) -> Result<(), SinkError> {
    let e = match put.send().await {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    if let (
        Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(
            x,
        )),
        Some((monitor, expected)),
    ) = (e.as_service_error(), &expected)
    {
        let found = x
            .item()
            .and_then(|i| i.get("version"))
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        return Err(SinkError::new(
            "dynamodb",
            crate::ports::version_conflict(monitor, found, *expected),
        ));
    }
    let what = match &expected {
        Some((monitor, _)) => format!("the state of {monitor}"),
        None => "the pending metrics".to_string(),
    };
    Err(SinkError::transient(
        "dynamodb",
        format!("PutItem of {what} on {table}: {}", describe(&e)),
    ))
}

fn state_item(state: &MonitorState) -> Result<HashMap<String, AttributeValue>, SinkError> {
    let json =
        serde_json::to_string(state).map_err(|e| SinkError::new("dynamodb", e.to_string()))?;
    Ok(HashMap::from([
        ("monitor".into(), AttributeValue::S(state.monitor.clone())),
        (
            "status".into(),
            AttributeValue::S(state.status.as_str().to_string()),
        ),
        (
            "version".into(),
            AttributeValue::N(state.version.to_string()),
        ),
        (
            "since".into(),
            AttributeValue::S(crate::clock::rfc3339(state.since_ms / 1000)),
        ),
        ("state".into(), AttributeValue::S(json)),
    ]))
}

fn text_attr<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

impl StateStore for DynamoState {
    async fn load(&self, monitors: &[String]) -> Result<HashMap<String, MonitorState>, SinkError> {
        let mut out = HashMap::new();
        for item in self.get_many(monitors).await? {
            let (Some(name), Some(json)) = (text_attr(&item, "monitor"), text_attr(&item, "state"))
            else {
                continue;
            };
            let state: MonitorState = serde_json::from_str(json).map_err(|e| {
                SinkError::new("dynamodb", format!("state of {name} is unreadable: {e}"))
            })?;
            out.insert(name.to_string(), state);
        }
        Ok(out)
    }

    /// One conditional PutItem per changed state, `PUTS_IN_FLIGHT` at a
    /// time: each state is written only over the version it follows, so a
    /// run that loaded an older state (an overlapping run of the same shard)
    /// cannot undo what another saved since; that monitor is reported and
    /// the others are still saved. A steady fleet changes no state and
    /// writes nothing.
    ///
    /// Why not batches: `BatchWriteItem` cannot be conditional, and
    /// `TransactWriteItems` costs two write units an item, is all-or-nothing
    /// per call (one stale monitor cancels 99 others, resent without it),
    /// and under moto copies the whole table for every item of every
    /// transaction (a 1,000-monitor first run timed out 8 of 10 calls).
    /// A PutItem is one write unit and fails alone.
    async fn save(&self, changes: StateChanges) -> SaveReport {
        use futures::StreamExt as _;
        let mut report = SaveReport::default();
        let mut puts = Vec::with_capacity(changes.monitors.len() + 1);
        if let Some(data) = &changes.pending_metrics {
            match serde_json::to_string(data) {
                Ok(json) => puts.push((
                    self.client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(HashMap::from([
                            (
                                "monitor".into(),
                                AttributeValue::S(pending_key(changes.shard)),
                            ),
                            ("data".into(), AttributeValue::S(json)),
                        ]))),
                    None,
                )),
                Err(e) => report
                    .errors
                    .push(SinkError::new("dynamodb", e.to_string())),
            }
        }
        for state in &changes.monitors {
            match state_put(&self.client, &self.table, state) {
                Ok(p) => puts.push(p),
                Err(e) => report.errors.push(e),
            }
        }
        report.writes = puts.len();
        let table = self.table.as_str();
        let results: Vec<(bool, Result<(), SinkError>)> = futures::stream::iter(puts)
            .map(|(put, expected)| async move {
                let pending = expected.is_none();
                (pending, send_put(put, expected, table).await)
            })
            .buffer_unordered(PUTS_IN_FLIGHT)
            .collect()
            .await;
        let mut pending_saved = true;
        for (pending, r) in results {
            if let Err(e) = r {
                pending_saved &= !pending;
                report.errors.push(e);
            }
        }
        if let (Some(data), Ok(mut held)) = (changes.pending_metrics, self.fallback.lock()) {
            if pending_saved {
                held.remove(&changes.shard);
            } else {
                held.insert(changes.shard, data);
            }
        }
        report
    }

    async fn load_pending_metrics(&self, shard: u32) -> Result<Vec<Datum>, SinkError> {
        let held = self
            .fallback
            .lock()
            .map_err(|_| SinkError::new("dynamodb", "lock poisoned"))?
            .remove(&shard)
            .unwrap_or_default();
        let stored = match self.get_many(&[pending_key(shard)]).await {
            Ok(items) => match items.first().and_then(|i| text_attr(i, "data")) {
                Some(json) => serde_json::from_str::<Vec<Datum>>(json).map_err(|e| {
                    SinkError::new("dynamodb", format!("pending metrics unreadable: {e}"))
                })?,
                None => Vec::new(),
            },
            // The table is unreachable: what memory holds is still worth sending.
            Err(e) if held.is_empty() => return Err(e),
            Err(_) => Vec::new(),
        };
        Ok(stored.into_iter().chain(held).collect())
    }
}
