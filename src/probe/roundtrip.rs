//! The round-trip check: submit a signed probe message by SMTP, look for it
//! by POP3 a few times within a bounded wait, and judge the delivery time.
//!
//! (a) messages sent by earlier runs and not yet found are in the state
//! (`Outstanding`); (b) a new one is sent; (c) the mailbox is polled, each
//! poll a fresh POP3 login (a maildrop is a snapshot taken at login), until
//! this run's message is found or the wait ends. Each poll deletes the
//! probe's own messages it finds (and its stale ones), through
//! `roundtrip::sweep`, which alone can open the deleting session.
//!
//! Both legs are ordinary runs of the SMTP and POP3 checks' parts, so a
//! failure keeps its kind and its phase inside the leg; the result's failed
//! phase is the leg (`submit` or `retrieve`), so a broken submission server
//! is never blamed on POP3, nor the reverse.

use std::collections::HashSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::time::Instant;

use super::smtp::local_literal;
use super::{micros_to_ms, start, Classify, Failure, Run};
use super::{
    AuthMethod, FailureKind, Kind, Phase, PhaseTiming, ProbeResult, RoundtripFacts, Status, Target,
    TlsMode,
};
use crate::clock::{now_ms, now_rfc3339};
use crate::pop3::Client;
use crate::roundtrip::token::{SigningKey, Token, Verifier};
use crate::roundtrip::{self, message, Address, Sweep};
use crate::smtp::{self, banner_software, HelloName};

/// How long one run polls for its own message by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);
/// Time between two looks into the mailbox.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The probe's own messages older than this are removed whatever the state
/// says (a run that crashed after sending, a state that was reset).
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// One round-trip monitor, resolved from the config or the CLI.
#[derive(Clone, Debug)]
pub struct RoundTrip {
    pub name: String,
    /// The SMTP submission endpoint (kind smtp, with credentials).
    pub submit: Target,
    /// The POP3 endpoint of the recipient's mailbox.
    pub retrieve: Target,
    pub from: String,
    pub to: String,
    pub key: SigningKey,
    /// Not found this long after sending: `message_lost`.
    pub max_delivery: Duration,
    pub warning: Duration,
    pub critical: Duration,
    /// How long this run polls for its own message (never past `timeout`).
    pub wait: Duration,
    pub poll_interval: Duration,
    pub stale_after: Duration,
    /// The whole run, both legs and every poll.
    pub timeout: Duration,
}

/// What a round trip keeps between runs: the next sequence number and the
/// messages sent but not yet found. Stored with the monitor's alert state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outstanding {
    #[serde(default)]
    pub next_seq: u64,
    #[serde(default)]
    pub sent: Vec<Token>,
}

/// Outstanding messages kept at most: a mailbox that swallows every
/// message must not grow the state without end (each is lost after
/// `max_delivery` anyway).
const MAX_OUTSTANDING: usize = 100;

/// A leg's target: bounded by what is left of the run, and never judged
/// slow on its own (the round trip judges the delivery time).
fn leg(target: &Target, deadline: Instant) -> Target {
    let mut t = target.clone();
    let left = deadline.saturating_duration_since(Instant::now());
    t.timeout = t.timeout.min(left);
    t.warning = Duration::MAX;
    t.critical = Duration::MAX;
    t
}

impl Run<'_> {
    /// The SMTP leg: the smtp check's dialogue up to AUTH, then MAIL, RCPT,
    /// DATA. Returns the server's reply to the message.
    async fn submit_leg(
        &mut self,
        from: &Address,
        to: &Address,
        text: &str,
    ) -> Result<String, Failure> {
        let t = self.target;
        let Some((user, password)) = self.smtp_credentials()? else {
            return Err(Failure::new(
                FailureKind::ConfigError,
                Phase::Auth,
                "the submit side needs credentials: submission servers take mail only after AUTH",
            ));
        };
        let configured_name = t
            .ehlo_name
            .as_deref()
            .map(HelloName::new)
            .transpose()
            .map_err(|e| {
                Failure::new(
                    FailureKind::ConfigError,
                    Phase::Ehlo,
                    format!("ehlo_name: {e}"),
                )
            })?;
        let (stream, tls) = self.open().await?;
        let name = configured_name.unwrap_or_else(|| local_literal(&stream));
        let transcript = self.transcript.clone();
        let client = self
            .phase(Phase::Greeting, async {
                smtp::Client::connect(stream, transcript)
                    .await
                    .map_err(|e| e.classify(Phase::Greeting))
            })
            .await?;
        let software = banner_software(client.banner().first_line());
        let mut session = self.hello(client, &name, &software).await?;
        if let (Some(setup), TlsMode::Starttls | TlsMode::StarttlsIfAvailable) = (&tls, t.tls) {
            session = self.smtp_starttls(session, setup, &name, &software).await?;
        }
        let (done, _method) = self.smtp_login(session, user, password).await?;
        let reply = self
            .phase(Phase::Submit, async {
                roundtrip::submit(done, from, to, text)
                    .await
                    .map_err(|(step, e)| {
                        let mut f = e.classify(Phase::Submit);
                        f.message = format!("{}: {}", step.as_str(), f.message);
                        f
                    })
            })
            .await?;
        Ok(reply.first_line().to_string())
    }

    /// The POP3 leg: the pop3 check's dialogue up to login, then one sweep.
    async fn retrieve_leg(
        &mut self,
        verifier: &Verifier,
        wanted: &HashSet<u64>,
        stale_before_ms: i64,
        foreign_seen: &mut HashSet<String>,
    ) -> Result<Sweep, Failure> {
        let t = self.target;
        if t.auth == AuthMethod::None {
            return Err(Failure::new(
                FailureKind::ConfigError,
                Phase::Auth,
                "the retrieve side must log in to read the mailbox",
            ));
        }
        let (stream, tls) = self.open().await?;
        let transcript = self.transcript.clone();
        let mut client = self
            .phase(Phase::Greeting, async {
                Client::connect(stream, transcript)
                    .await
                    .map_err(|e| e.classify(Phase::Greeting))
            })
            .await?;
        self.apop_offered = client.greeting().apop_timestamp.is_some();
        if let (Some((tls_client, name)), TlsMode::Starttls | TlsMode::StarttlsIfAvailable) =
            (&tls, t.tls)
        {
            client = self.stls(client, tls_client, name.clone()).await?;
        }
        let session = self.pop3_login(client).await?;
        self.phase(Phase::Retrieve, async {
            roundtrip::sweep(session, verifier, wanted, stale_before_ms, foreign_seen)
                .await
                .map_err(|e| e.classify(Phase::Retrieve))
        })
        .await
    }
}

/// One leg's outcome as a result of its own (scrubbed by `finish`).
struct Leg<T> {
    result: ProbeResult,
    value: Option<T>,
    ms: f64,
}

async fn run_leg<'t, T, F>(target: &'t Target, body: F) -> Leg<T>
where
    F: for<'r> FnOnce(&'r mut Run<'t>) -> futures::future::BoxFuture<'r, Result<T, Failure>>,
{
    let started_at = now_rfc3339();
    let began = Instant::now();
    let mut run = start(target);
    let outcome = body(&mut run).await;
    let (value, outcome) = match outcome {
        Ok(v) => (Some(v), Ok(())),
        Err(f) => (None, Err(f)),
    };
    let result = run.finish(outcome, started_at);
    Leg {
        result,
        value,
        ms: micros_to_ms(began.elapsed()),
    }
}

/// Run one round trip. Never fails: every problem is in the result. The
/// returned state replaces `state`.
pub async fn probe(rt: &RoundTrip, state: &Outstanding) -> (ProbeResult, Outstanding) {
    let started_at = now_rfc3339();
    let began = Instant::now();
    let deadline = began + rt.timeout;
    let verifier = Verifier::new(rt.name.clone(), rt.key.clone());
    let mut next = state.clone();
    let mut facts = RoundtripFacts {
        poll_interval_ms: rt.poll_interval.as_millis() as u64,
        ..RoundtripFacts::default()
    };
    let mut phases = Vec::new();
    let mut transcript = Vec::new();

    let addresses =
        Address::new(&rt.from, "from").and_then(|f| Ok((f, Address::new(&rt.to, "to")?)));
    let (from, to) = match addresses {
        Ok(a) => a,
        Err(e) => {
            let base = leg_stub(rt, &started_at);
            return (
                fail(
                    rt,
                    base,
                    &mut facts,
                    None,
                    FailureKind::ConfigError,
                    Phase::Submit,
                    None,
                    format!("{e}"),
                    phases,
                    began,
                    &next,
                ),
                next,
            );
        }
    };

    // (b) Send this run's message.
    let token = Token {
        seq: next.next_seq,
        sent_ms: now_ms(),
    };
    let header = verifier.sign(token);
    let msg = message::build(
        &rt.name,
        &rt.from,
        &rt.to,
        token,
        &header,
        OffsetDateTime::now_utc(),
    );
    let submit_target = leg(&rt.submit, deadline);
    let text = msg.text.clone();
    let submitted = run_leg(&submit_target, |run| {
        Box::pin(async move { run.submit_leg(&from, &to, &text).await })
    })
    .await;
    phases.push(PhaseTiming {
        phase: Phase::Submit,
        ms: submitted.ms,
    });
    transcript.extend(submitted.result.transcript.iter().cloned());
    if submitted.value.is_none() {
        let out = leg_failed(
            rt,
            submitted.result,
            Phase::Submit,
            &mut facts,
            phases,
            began,
            &next,
            transcript,
        );
        return (out, next);
    }
    next.next_seq += 1;
    next.sent.push(token);
    if next.sent.len() > MAX_OUTSTANDING {
        let drop = next.sent.len() - MAX_OUTSTANDING;
        next.sent.drain(..drop);
    }
    facts.sent_seq = Some(token.seq);

    // (a) and (c): look for it, and for the earlier ones, until found or
    // the wait runs out. A margin is left for the last poll itself.
    let margin = (rt.timeout / 4).min(Duration::from_secs(2));
    let wait_until = (Instant::now() + rt.wait).min(deadline - margin.min(rt.timeout));
    let mut foreign_seen = HashSet::new();
    let mut retrieve_ms = 0.0;
    let mut current: Option<(f64, Option<f64>)> = None;
    let mut earlier: Option<(u64, f64, Option<f64>)> = None;
    let last: Option<ProbeResult> = loop {
        facts.polls += 1;
        let wanted: HashSet<u64> = next.sent.iter().map(|t| t.seq).collect();
        let stale_before = now_ms() - rt.stale_after.as_millis() as i64;
        let target = leg(&rt.retrieve, deadline);
        let seen = &mut foreign_seen;
        let v = &verifier;
        let w = &wanted;
        let polled = run_leg(&target, |run| {
            Box::pin(async move { run.retrieve_leg(v, w, stale_before, seen).await })
        })
        .await;
        retrieve_ms += polled.ms;
        transcript.extend(polled.result.transcript.iter().cloned());
        let Some(sweep) = polled.value else {
            phases.push(PhaseTiming {
                phase: Phase::Retrieve,
                ms: retrieve_ms,
            });
            let out = leg_failed(
                rt,
                polled.result,
                Phase::Retrieve,
                &mut facts,
                phases,
                began,
                &next,
                transcript,
            );
            return (out, next);
        };
        let found_at = now_ms();
        facts.foreign_messages = sweep.foreign;
        facts.stale_deleted += sweep.stale_deleted;
        facts.deleted += sweep.stale_deleted + sweep.found.len() as u64;
        for f in &sweep.found {
            next.sent.retain(|t| t.seq != f.token.seq);
            let delivery = (found_at - f.token.sent_ms).max(0) as f64;
            let by_header = f.received_ms.map(|r| (r - f.token.sent_ms).max(0) as f64);
            if f.token.seq == token.seq {
                current = Some((delivery, by_header));
            } else if earlier.is_none_or(|(s, _, _)| f.token.seq > s) {
                earlier = Some((f.token.seq, delivery, by_header));
            }
        }
        if current.is_some() || Instant::now() + rt.poll_interval >= wait_until {
            break Some(polled.result);
        }
        tokio::time::sleep(rt.poll_interval).await;
    };
    phases.push(PhaseTiming {
        phase: Phase::Retrieve,
        ms: retrieve_ms,
    });

    // Lost: not found within max_delivery of being sent. Counted once,
    // then forgotten, so a lossy route gives one failed run per message.
    let now = now_ms();
    let max = rt.max_delivery.as_millis() as i64;
    let lost: Vec<Token> = next
        .sent
        .iter()
        .copied()
        .filter(|t| now - t.sent_ms > max)
        .collect();
    next.sent.retain(|t| now - t.sent_ms <= max);
    facts.lost = lost.len() as u64;
    facts.outstanding = next.sent.len() as u64;

    let mut base = last.unwrap_or_else(|| leg_stub(rt, &started_at));
    base.transcript = transcript;
    let delivered = current.or(earlier.map(|(_, d, h)| (d, h)));
    if let Some((d, h)) = delivered {
        facts.delivery_ms = Some(d);
        facts.received_delivery_ms = h;
        phases.push(PhaseTiming {
            phase: Phase::Delivery,
            ms: d,
        });
    }
    let cleanup = format!(
        "{} of the probe's messages removed, {} other messages left alone",
        facts.deleted, facts.foreign_messages
    );
    if let Some(first) = lost.first() {
        let message = format!(
            "message_lost: probe message {} sent at {} not found in {}:{} within {} ms (max_delivery_ms); {cleanup}",
            first.seq,
            crate::clock::rfc3339(first.sent_ms / 1000),
            rt.retrieve.host,
            rt.retrieve.port,
            max
        );
        let out = fail(
            rt,
            base,
            &mut facts,
            None,
            FailureKind::MessageLost,
            Phase::Delivery,
            None,
            message,
            phases,
            began,
            &next,
        );
        return (out, next);
    }
    let (status, failure, failed, message) = match delivered {
        Some((d, _)) => {
            let which = if current.is_some() {
                format!("message {} delivered in {d:.0} ms", token.seq)
            } else {
                format!(
                    "message {} delivered in {d:.0} ms (sent by an earlier run); message {} not yet",
                    earlier.map(|e| e.0).unwrap_or_default(),
                    token.seq
                )
            };
            judge(rt, d, which)
        }
        None => {
            let oldest = next.sent.iter().map(|t| now - t.sent_ms).max().unwrap_or(0) as f64;
            judge(
                rt,
                oldest,
                format!(
                    "message {} submitted, not delivered yet after {oldest:.0} ms ({} outstanding)",
                    token.seq,
                    next.sent.len()
                ),
            )
        }
    };
    base.status = status;
    base.failure = failure;
    base.failed_phase = failed;
    base.message = format!("{message}; {cleanup}");
    base.server_reply = None;
    (
        finish_roundtrip(rt, base, facts, phases, began, started_at),
        next,
    )
}

/// Run one round trip and keep the next state in the result's facts
/// (`RoundtripFacts::next_state`), for runners that store it.
pub async fn probe_keeping_state(rt: &RoundTrip, state: &Outstanding) -> ProbeResult {
    let (mut r, next) = probe(rt, state).await;
    if let Some(f) = r.roundtrip.as_mut() {
        f.next_state = Some(next);
    }
    r
}

/// Up, degraded or down by the delivery time (or the oldest message's wait).
fn judge(
    rt: &RoundTrip,
    ms: f64,
    what: String,
) -> (Status, Option<FailureKind>, Option<Phase>, String) {
    if ms > rt.critical.as_millis() as f64 {
        (
            Status::Down,
            Some(FailureKind::ResponseTimeCritical),
            Some(Phase::Delivery),
            format!(
                "{what}: slower than critical_ms {}",
                rt.critical.as_millis()
            ),
        )
    } else if ms > rt.warning.as_millis() as f64 {
        (
            Status::Degraded,
            None,
            None,
            format!("{what}: slower than warning_ms {}", rt.warning.as_millis()),
        )
    } else {
        (Status::Up, None, None, what)
    }
}

/// A result shell for failures before any leg ran.
fn leg_stub(rt: &RoundTrip, started_at: &str) -> ProbeResult {
    let mut t = rt.retrieve.clone();
    t.warning = Duration::MAX;
    t.critical = Duration::MAX;
    let run = start(&t);
    let mut r = run.finish(Ok(()), started_at.to_string());
    r.started_at = started_at.to_string();
    r
}

/// A leg (`submit` or `retrieve`) failed: the round trip keeps that leg's
/// own kind and its phase inside the leg, names the endpoint, and carries
/// the leg's reply and the transcript so far, so a broken submission server
/// is never blamed on POP3 or the reverse.
#[allow(clippy::too_many_arguments)]
fn leg_failed(
    rt: &RoundTrip,
    r: ProbeResult,
    leg: Phase,
    facts: &mut RoundtripFacts,
    phases: Vec<PhaseTiming>,
    began: Instant,
    next: &Outstanding,
    transcript: Vec<crate::wire::WireLine>,
) -> ProbeResult {
    let endpoint = if leg == Phase::Submit {
        &rt.submit
    } else {
        &rt.retrieve
    };
    let kind = r.failure.unwrap_or(FailureKind::ProtocolError);
    let leg_phase = r.failed_phase;
    let message = format!("{leg} ({}:{}): {}", endpoint.host, endpoint.port, r.message);
    let reply = r.server_reply.clone();
    let mut out = fail(
        rt,
        r,
        facts,
        Some(leg),
        kind,
        leg,
        leg_phase,
        message,
        phases,
        began,
        next,
    );
    out.server_reply = reply;
    out.transcript = transcript;
    out
}

#[allow(clippy::too_many_arguments)]
fn fail(
    rt: &RoundTrip,
    mut base: ProbeResult,
    facts: &mut RoundtripFacts,
    failed_leg: Option<Phase>,
    kind: FailureKind,
    phase: Phase,
    leg_phase: Option<Phase>,
    message: String,
    phases: Vec<PhaseTiming>,
    began: Instant,
    next: &Outstanding,
) -> ProbeResult {
    facts.failed_leg = failed_leg;
    facts.leg_phase = leg_phase;
    facts.outstanding = next.sent.len() as u64;
    base.status = Status::Down;
    base.failure = Some(kind);
    base.failed_phase = Some(phase);
    base.message = message;
    let started_at = base.started_at.clone();
    finish_roundtrip(rt, base, std::mem::take(facts), phases, began, started_at)
}

fn finish_roundtrip(
    rt: &RoundTrip,
    mut r: ProbeResult,
    facts: RoundtripFacts,
    phases: Vec<PhaseTiming>,
    began: Instant,
    started_at: String,
) -> ProbeResult {
    r.kind = Kind::Roundtrip;
    r.monitor = rt.name.clone();
    r.host = rt.retrieve.host.clone();
    r.port = rt.retrieve.port;
    r.tls_mode = rt.retrieve.tls;
    r.auth_method = rt.retrieve.auth;
    r.warning_ms = rt.warning.as_millis() as u64;
    r.critical_ms = rt.critical.as_millis() as u64;
    r.response_time_ms = micros_to_ms(began.elapsed());
    r.phases = phases;
    r.started_at = started_at;
    r.roundtrip = Some(facts);
    r
}
