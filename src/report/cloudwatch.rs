//! The history from CloudWatch: `GetMetricData` per monitor, `ListMetrics`
//! to find the monitors when none are named.
//!
//! This runs with the operator's credentials from the command line, never
//! in the Lambda: infra/tests/policy_vs_code.py leaves `src/report/` out of
//! the function's policy check for that reason.
//!
//! CloudWatch answers in periods: per period and monitor it gives the
//! Average and SampleCount of `Availability` and `ResponseTime`. With at
//! most one probe per period (the default 60 s period and a schedule of a
//! minute or slower), a period's Average is that probe's value and the
//! report is exact. With several probes in a period, availability stays
//! exact (weighted by SampleCount) while outages and percentiles are taken
//! over period averages: an approximation, which the report notes.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StatusCode,
};

use super::{History, Query, ReportError, Sample, Series, AVAILABILITY, RESPONSE_TIME};
use crate::aws::describe;

/// Queries per request: the API takes 500; four per monitor.
const MONITORS_PER_REQUEST: usize = 100;
/// A bound on pages per request, against a server that never stops.
const MAX_PAGES: usize = 10_000;

const DAY_MS: i64 = 86_400_000;

/// The finest period CloudWatch still holds for data that old: one minute
/// for 15 days, five minutes for 63 days, an hour after that.
pub fn finest_period(from_ms: i64, now_ms: i64) -> i32 {
    let age = now_ms - from_ms;
    if age <= 15 * DAY_MS {
        60
    } else if age <= 63 * DAY_MS {
        300
    } else {
        3600
    }
}

/// Whether `period` works for data starting at `from_ms`: a multiple of
/// 60 s (the probe publishes standard-resolution metrics), and of the
/// coarser period CloudWatch keeps older data at (it returns nothing,
/// silently, for a finer one).
pub fn check_period(period: i32, from_ms: i64, now_ms: i64) -> Result<(), String> {
    if period < 60 || period % 60 != 0 {
        return Err(format!("{period} is not a multiple of 60 seconds"));
    }
    let finest = finest_period(from_ms, now_ms);
    if period % finest != 0 {
        return Err(format!(
            "CloudWatch keeps data older than {} days only at {finest} s resolution: \
             use a multiple of {finest} (or leave --period out)",
            if finest == 300 { 15 } else { 63 }
        ));
    }
    Ok(())
}

pub struct CloudWatchHistory {
    client: aws_sdk_cloudwatch::Client,
}

fn cw_error(what: &str, message: String) -> ReportError {
    ReportError::new(format!("CloudWatch {what}"), message)
}

fn millis(t: &DateTime) -> i64 {
    t.to_millis().unwrap_or(i64::MAX)
}

/// One query's values, by timestamp.
type Points = BTreeMap<i64, f64>;

impl CloudWatchHistory {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        CloudWatchHistory { client }
    }

    /// The monitors in `query` (or all found by ListMetrics), read over
    /// `period` seconds, which the caller checked with [`check_period`].
    pub async fn read(&self, query: &Query, period: i32) -> Result<History, ReportError> {
        let region = self
            .client
            .config()
            .region()
            .map(|r| format!("CloudWatch in {r}"))
            .unwrap_or_else(|| "CloudWatch".into());
        let mut history = History {
            source: format!("{region} (period {period} s)"),
            ..Default::default()
        };
        let monitors = if query.monitors.is_empty() {
            let found = self.monitors(&query.namespace).await?;
            if found.is_empty() {
                return Err(ReportError::new(
                    "no data",
                    format!(
                        "ListMetrics finds no {AVAILABILITY} metric in namespace {} in {region} \
                         (it lists metrics with data in the past two weeks: for older periods, \
                         name the monitors with --monitor)",
                        query.namespace
                    ),
                ));
            }
            found
        } else {
            query.monitors.clone()
        };
        // Whole periods inside the range: CloudWatch aligns periods anyway
        // (moto starts them at StartTime), and a period that only overlaps
        // the range would count probes from outside it.
        let p = i64::from(period) * 1000;
        let start = (query.from_ms + p - 1).div_euclid(p) * p;
        let end = query.to_ms.div_euclid(p) * p;
        if end <= start {
            return Err(ReportError::new(
                "--from",
                format!(
                    "the range holds no whole {period} s period: widen --from/--to or use a shorter --period"
                ),
            ));
        }
        let mut averaged = 0usize;
        for chunk in monitors.chunks(MONITORS_PER_REQUEST) {
            let points = self
                .fetch(&query.namespace, chunk, period, start, end)
                .await?;
            for (i, monitor) in chunk.iter().enumerate() {
                let series = Series {
                    availability: join(&points, &format!("a{i}"), &format!("n{i}")),
                    response_ms: join(&points, &format!("r{i}"), &format!("c{i}")),
                };
                averaged += series.availability.iter().filter(|s| s.count > 1.0).count();
                history.monitors.insert(monitor.clone(), series);
            }
        }
        if averaged > 0 {
            history.notes.push(format!(
                "{averaged} CloudWatch periods of {period} s held more than one probe: outages and \
                 percentiles there are taken over period averages (availability stays exact)"
            ));
        }
        Ok(history)
    }

    /// Monitor names with an `Availability` metric in the namespace.
    async fn monitors(&self, namespace: &str) -> Result<Vec<String>, ReportError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .list_metrics()
                .namespace(namespace)
                .metric_name(AVAILABILITY)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cw_error("ListMetrics", describe(&e)))?;
            for m in page.metrics() {
                for d in m.dimensions() {
                    if let (Some("Monitor"), Some(v)) = (d.name(), d.value()) {
                        names.push(v.to_string());
                    }
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => {
                    names.sort();
                    names.dedup();
                    return Ok(names);
                }
            }
        }
        Err(cw_error(
            "ListMetrics",
            format!("more than {MAX_PAGES} pages"),
        ))
    }

    /// Four queries per monitor, every page, values by query id.
    async fn fetch(
        &self,
        namespace: &str,
        monitors: &[String],
        period: i32,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<HashMap<String, Points>, ReportError> {
        let query = |id: String, metric: &str, monitor: &str, stat: &str| {
            MetricDataQuery::builder()
                .id(id)
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace(namespace)
                                .metric_name(metric)
                                .dimensions(
                                    Dimension::builder().name("Monitor").value(monitor).build(),
                                )
                                .build(),
                        )
                        .period(period)
                        .stat(stat)
                        .build(),
                )
                .return_data(true)
                .build()
        };
        let mut queries = Vec::with_capacity(monitors.len() * 4);
        for (i, m) in monitors.iter().enumerate() {
            queries.push(query(format!("a{i}"), AVAILABILITY, m, "Average"));
            queries.push(query(format!("n{i}"), AVAILABILITY, m, "SampleCount"));
            queries.push(query(format!("r{i}"), RESPONSE_TIME, m, "Average"));
            queries.push(query(format!("c{i}"), RESPONSE_TIME, m, "SampleCount"));
        }
        let mut points: HashMap<String, Points> = HashMap::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let page = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(queries.clone()))
                .start_time(DateTime::from_millis(start_ms))
                .end_time(DateTime::from_millis(end_ms))
                .scan_by(ScanBy::TimestampAscending)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| cw_error("GetMetricData", describe(&e)))?;
            for r in page.metric_data_results() {
                if let Some(StatusCode::InternalError | StatusCode::Forbidden) = r.status_code() {
                    let why: Vec<&str> = r.messages().iter().filter_map(|m| m.value()).collect();
                    return Err(cw_error(
                        "GetMetricData",
                        format!(
                            "query {} ({:?}): {}",
                            r.label().unwrap_or_default(),
                            r.status_code(),
                            why.join("; ")
                        ),
                    ));
                }
                let into = points
                    .entry(r.id().unwrap_or_default().to_string())
                    .or_default();
                for (t, v) in r.timestamps().iter().zip(r.values()) {
                    into.insert(millis(t), *v);
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(points),
            }
        }
        Err(cw_error(
            "GetMetricData",
            format!("more than {MAX_PAGES} pages"),
        ))
    }
}

/// Per-period averages with their probe counts (1 where the count is
/// missing, which a period with a value cannot really have).
fn join(points: &HashMap<String, Points>, average: &str, count: &str) -> Vec<Sample> {
    let counts = points.get(count);
    points
        .get(average)
        .into_iter()
        .flatten()
        .map(|(t, v)| Sample {
            t_ms: *t,
            value: *v,
            count: counts.and_then(|c| c.get(t)).copied().unwrap_or(1.0),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_cloudwatch_retention() {
        let now = 100 * DAY_MS;
        assert_eq!(finest_period(now - DAY_MS, now), 60);
        assert_eq!(finest_period(now - 20 * DAY_MS, now), 300);
        assert_eq!(finest_period(now - 90 * DAY_MS, now), 3600);
        assert!(check_period(60, now - DAY_MS, now).is_ok());
        assert!(check_period(3600, now - DAY_MS, now).is_ok());
        assert!(check_period(90, now - DAY_MS, now)
            .unwrap_err()
            .contains("multiple of 60"));
        assert!(check_period(30, now - DAY_MS, now).is_err());
        let e = check_period(60, now - 20 * DAY_MS, now).unwrap_err();
        assert!(e.contains("multiple of 300"), "{e}");
        assert!(check_period(600, now - 20 * DAY_MS, now).is_ok());
        assert!(check_period(1800, now - 90 * DAY_MS, now).is_err());
    }

    #[test]
    fn averages_join_their_counts() {
        let mut points = HashMap::new();
        points.insert("a0".to_string(), Points::from([(0, 1.0), (60_000, 0.5)]));
        points.insert("n0".to_string(), Points::from([(0, 1.0), (60_000, 4.0)]));
        let s = join(&points, "a0", "n0");
        assert_eq!(
            s,
            [
                Sample::one(0, 1.0),
                Sample {
                    t_ms: 60_000,
                    value: 0.5,
                    count: 4.0
                }
            ]
        );
        assert!(join(&points, "r0", "c0").is_empty());
    }
}
