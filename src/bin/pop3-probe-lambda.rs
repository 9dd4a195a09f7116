//! The Lambda entry point: SDK clients built once per container, the
//! handler in `pop3_probe::lambda`.

use std::time::Duration;

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use pop3_probe::aws::{AwsSecrets, CloudWatchMetrics, DynamoState, SnsAlerts};
use pop3_probe::lambda::{self, ConfigCache, InvocationError, Settings};
use pop3_probe::pipeline::RunSummary;
use pop3_probe::vantage::{DynamoVantages, Vantage};

struct App {
    settings: Settings,
    cache: ConfigCache,
    secrets: AwsSecrets,
    metrics: CloudWatchMetrics,
    alerts: SnsAlerts,
    state: DynamoState,
    /// Set when this function is one of several vantages.
    vantage: Option<String>,
    vantages: DynamoVantages,
}

#[derive(Debug)]
struct Failed(InvocationError);

impl From<Failed> for Diagnostic {
    fn from(f: Failed) -> Diagnostic {
        Diagnostic {
            error_type: f.0.kind().to_string(),
            error_message: f.0.to_string(),
        }
    }
}

async fn handler(event: LambdaEvent<serde_json::Value>, app: &App) -> Result<RunSummary, Failed> {
    let now_ms = u64::try_from(pop3_probe::clock::now_ms()).unwrap_or(0);
    let remaining = lambda::remaining_time(event.context.deadline, now_ms);
    let vantage = app.vantage.as_deref().map(|name| Vantage {
        name: name.to_string(),
        store: &app.vantages,
    });
    lambda::handle_with_vantage(
        event.payload,
        remaining,
        &app.settings,
        &app.cache,
        &app.secrets,
        &app.metrics,
        &app.alerts,
        &app.state,
        vantage.as_ref(),
    )
    .await
    // The results are in the log, one `probe_result` line each; returned
    // too, a large shard would pass Lambda's 6 MB response limit.
    .map(|mut summary| {
        summary.results = Vec::new();
        summary
    })
    .map_err(Failed)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // JSON logs, one object per line; never a secret (results are scrubbed,
    // and credentials are never formatted).
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .with_target(false)
        .init();
    let settings = Settings::from_env().map_err(|e| {
        tracing::error!(error = %e, "cannot start");
        e
    })?;
    let vantage = lambda::vantage_from_env().map_err(|e| {
        tracing::error!(error = %e, "cannot start");
        e
    })?;
    // Timeouts and retries that fit the run's safety margin (aws::with_limits).
    let sdk = pop3_probe::aws::sdk_config().await;
    // Build the TLS roots now, not in the first probe.
    let _ = pop3_probe::net::TlsClient::webpki();
    let state_region = std::env::var("POP3_PROBE_STATE_REGION").ok();
    let table = pop3_probe::aws::dynamodb_in(&sdk, state_region.as_deref());
    let app = App {
        cache: ConfigCache::default(),
        secrets: AwsSecrets::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            Duration::from_secs(300),
        ),
        metrics: CloudWatchMetrics::new(aws_sdk_cloudwatch::Client::new(&sdk)),
        alerts: SnsAlerts::new(
            pop3_probe::aws::sns_for_topic(&sdk, &settings.topic_arn),
            settings.topic_arn.clone(),
        ),
        state: DynamoState::new(table.clone(), settings.state_table.clone()),
        vantages: DynamoVantages::new(table, settings.state_table.clone()),
        vantage,
        settings,
    };
    let app = &app;
    lambda_runtime::run(service_fn(move |event| handler(event, app))).await
}
