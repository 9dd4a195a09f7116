//! Resolving and connecting, which every check begins with, and the two
//! checks that go no further: `tcp` (resolve, connect) and `dns`
//! (resolve).

use super::{start, Failure, FailureKind, Kind, Phase, ProbeResult, Run, Target};
use crate::clock::now_rfc3339;
use crate::net::{self, ConnectFailure};

/// A `tcp` or `dns` check.
pub(super) async fn probe(target: &Target) -> ProbeResult {
    let started_at = now_rfc3339();
    let mut run = start(target);
    let outcome = run.reach().await.map(drop);
    if outcome.is_ok() {
        run.summary = Some(if target.kind == Kind::Dns {
            format!("{} resolves to {}", target.host, run.addresses.join(", "))
        } else {
            format!(
                "connected to {}",
                run.address.as_deref().unwrap_or(target.host.as_str())
            )
        });
    }
    run.finish(outcome, started_at)
}

impl Run<'_> {
    /// Resolve, and connect unless this is a `dns` check.
    pub(super) async fn reach(&mut self) -> Result<Option<tokio::net::TcpStream>, Failure> {
        let t = self.target;
        let host = t.host.clone();
        let addrs = self
            .phase(Phase::Resolve, async {
                net::resolve(&host, t.port).await.map_err(|e| {
                    Failure::new(
                        FailureKind::DnsFailure,
                        Phase::Resolve,
                        format!("cannot resolve {host}: {e}"),
                    )
                })
            })
            .await?;
        self.addresses = addrs.iter().map(|a| a.ip().to_string()).collect();
        if t.kind == Kind::Dns {
            return Ok(None);
        }
        let budget = self.remaining();
        let (tcp, addr) = self
            .phase(Phase::Connect, async {
                net::connect_any(&addrs, budget).await.map_err(|e| {
                    let kind = match e.failure {
                        ConnectFailure::Refused => FailureKind::ConnectionRefused,
                        ConnectFailure::Timeout => FailureKind::Timeout,
                        ConnectFailure::Other => FailureKind::ConnectionFailed,
                    };
                    Failure::new(
                        kind,
                        Phase::Connect,
                        format!("cannot connect: {}", e.detail),
                    )
                })
            })
            .await
            .inspect_err(|_| {
                self.address = addrs.last().map(|a| a.to_string());
            })?;
        self.address = Some(addr.to_string());
        Ok(Some(tcp))
    }
}
