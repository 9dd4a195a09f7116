//! AWS adapters: Secrets Manager, CloudWatch, SNS, DynamoDB. Every call here
//! must be allowed by the IAM policy in infra/iam.tf, and nothing more is
//! allowed there: `infra/tests` checks the two against each other.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_sns::types::MessageAttributeValue;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::DateTime;
use secrecy::SecretString;
use tokio::time::Instant;

use crate::alert::{Alert, MonitorState};
use crate::sinks::{
    AlertSink, Datum, MetricsSink, PublishReport, SecretSource, SinkError, StateStore, Unit,
};

/// An SDK error as one readable line (code and message, no request body).
pub(crate) fn describe<E: std::error::Error>(e: &E) -> String {
    DisplayErrorContext(e).to_string()
}

/// Throttling, timeouts and server errors are worth another try.
fn is_transient<E, R>(e: &aws_sdk_cloudwatch::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_cloudwatch::error::ProvideErrorMetadata,
{
    use aws_sdk_cloudwatch::error::SdkError;
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or_default();
            code.contains("Throttl")
                || code.contains("LimitExceeded")
                || code == "ServiceUnavailable"
                || code == "InternalFailure"
                || code == "InternalServiceError"
        }
        _ => false,
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

    /// Forget everything (the next read goes to Secrets Manager).
    pub fn clear(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
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

/// CloudWatch PutMetricData, batched within the API's limits.
pub struct CloudWatchMetrics {
    client: aws_sdk_cloudwatch::Client,
    /// Pause before the first retry; doubles each time.
    pub backoff: Duration,
    pub attempts: u32,
}

/// The API allows 1,000 values and 1 MB per request; stay under both, with
/// room for the request's own overhead.
pub const MAX_VALUES_PER_REQUEST: usize = 1000;
pub const MAX_BYTES_PER_REQUEST: usize = 900_000;

/// A generous estimate of one value's size in the query-protocol body.
pub fn encoded_size(d: &Datum) -> usize {
    160 + d.name.len() * 2 + d.monitor.as_ref().map(|m| 3 * m.len() + 80).unwrap_or(0)
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
        CloudWatchMetrics {
            client,
            backoff: Duration::from_millis(200),
            attempts: 4,
        }
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
        b.build()
    }
}

impl MetricsSink for CloudWatchMetrics {
    async fn publish(&self, namespace: &str, data: Vec<Datum>) -> PublishReport {
        let mut report = PublishReport::default();
        for batch in batches(data) {
            let datums: Vec<MetricDatum> = batch.iter().map(Self::datum).collect();
            let mut delay = self.backoff;
            let mut attempt = 1;
            loop {
                report.requests += 1;
                let r = self
                    .client
                    .put_metric_data()
                    .namespace(namespace)
                    .set_metric_data(Some(datums.clone()))
                    .send()
                    .await;
                match r {
                    Ok(_) => {
                        report.published += batch.len();
                        break;
                    }
                    Err(e) if is_transient(&e) && attempt < self.attempts => {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        attempt += 1;
                    }
                    Err(e) => {
                        report.errors.push(format!(
                            "PutMetricData ({} values, attempt {attempt}): {}",
                            batch.len(),
                            describe(&e)
                        ));
                        report.failed.extend(batch);
                        break;
                    }
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

/// SNS subjects must be ASCII without control characters, under 100.
pub fn sns_subject(s: &str) -> String {
    let ascii: String = s
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    crate::alert::truncate(&ascii, 99)
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
    /// unreachable too): kept in memory, which a warm Lambda keeps.
    fallback: Mutex<Vec<Datum>>,
}

const PENDING_KEY: &str = "#pending-metrics";

impl DynamoState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoState {
            client,
            table: table.into(),
            fallback: Mutex::new(Vec::new()),
        }
    }

    fn key(name: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("monitor".to_string(), AttributeValue::S(name.to_string()))])
    }

    /// BatchGetItem in chunks of 100, following UnprocessedKeys.
    async fn get_many(
        &self,
        names: &[String],
    ) -> Result<Vec<HashMap<String, AttributeValue>>, SinkError> {
        let mut items = Vec::new();
        for chunk in names.chunks(100) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.iter().map(|n| Self::key(n)).collect()))
                .build()
                .map_err(|e| SinkError::new("dynamodb", e.to_string()))?;
            let mut delay = Duration::from_millis(50);
            for round in 0.. {
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request.clone())
                    .send()
                    .await
                    .map_err(|e| {
                        SinkError::transient(
                            "dynamodb",
                            format!("BatchGetItem on {}: {}", self.table, describe(&e)),
                        )
                    })?;
                if let Some(found) = out.responses().and_then(|r| r.get(&self.table)) {
                    items.extend(found.iter().cloned());
                }
                match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                    Some(rest) if !rest.keys().is_empty() => {
                        if round == 5 {
                            return Err(SinkError::transient(
                                "dynamodb",
                                "BatchGetItem left keys unprocessed after 5 retries",
                            ));
                        }
                        request = rest.clone();
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                    _ => break,
                }
            }
        }
        Ok(items)
    }
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

    async fn save(&self, state: &MonitorState) -> Result<(), SinkError> {
        let json =
            serde_json::to_string(state).map_err(|e| SinkError::new("dynamodb", e.to_string()))?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("monitor", AttributeValue::S(state.monitor.clone()))
            .item(
                "status",
                AttributeValue::S(state.status.as_str().to_string()),
            )
            .item("version", AttributeValue::N(state.version.to_string()))
            .item(
                "since",
                AttributeValue::S(crate::net::rfc3339(state.since_ms / 1000)),
            )
            .item("state", AttributeValue::S(json));
        request = if state.version <= 1 {
            request.condition_expression("attribute_not_exists(monitor)")
        } else {
            request
                .condition_expression("attribute_not_exists(monitor) OR version = :prev")
                .expression_attribute_values(
                    ":prev",
                    AttributeValue::N((state.version - 1).to_string()),
                )
        };
        request.send().await.map_err(|e| {
            let conflict = e
                .as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception());
            if conflict {
                SinkError::new(
                    "dynamodb",
                    format!(
                        "{}: state moved on in another run (version conflict)",
                        state.monitor
                    ),
                )
            } else {
                SinkError::transient(
                    "dynamodb",
                    format!("PutItem on {}: {}", self.table, describe(&e)),
                )
            }
        })?;
        Ok(())
    }

    async fn load_pending_metrics(&self) -> Result<Vec<Datum>, SinkError> {
        let held = std::mem::take(
            &mut *self
                .fallback
                .lock()
                .map_err(|_| SinkError::new("dynamodb", "lock poisoned"))?,
        );
        let stored = match self.get_many(&[PENDING_KEY.to_string()]).await {
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

    async fn save_pending_metrics(&self, data: &[Datum]) -> Result<(), SinkError> {
        let result = self.store_pending(data).await;
        if let Ok(mut held) = self.fallback.lock() {
            *held = if result.is_err() {
                data.to_vec()
            } else {
                Vec::new()
            };
        }
        result
    }
}

impl DynamoState {
    async fn store_pending(&self, data: &[Datum]) -> Result<(), SinkError> {
        let json =
            serde_json::to_string(data).map_err(|e| SinkError::new("dynamodb", e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("monitor", AttributeValue::S(PENDING_KEY.to_string()))
            .item("data", AttributeValue::S(json))
            .send()
            .await
            .map_err(|e| {
                SinkError::transient(
                    "dynamodb",
                    format!("PutItem on {}: {}", self.table, describe(&e)),
                )
            })?;
        Ok(())
    }
}
