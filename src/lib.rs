//! pop3-probe: a POP3 mail-server monitor.
//!
//! Layers, each with one job: [`pop3`] and [`smtp`] (the protocols) over
//! [`wire`] (lines, the connection, the transcript) and [`sasl`] (the
//! login mechanisms both use), [`net`] (resolve, connect, TLS), [`probe`]
//! (one monitor in, one result out), [`config`]
//! (the monitor list), [`credentials`] (where each secret is read from),
//! [`run`] (many probes under one deadline), [`alert`] (the state
//! machine), [`pipeline`] (one scheduled run), [`ports`] (one trait per
//! outside system, their error in [`outside`]) with adapters in `aws` and
//! [`local`], [`clock`] (wall-clock time and timestamps), and [`lambda`]
//! (the handler). The binaries are thin.

pub mod alert;
#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
pub mod config;
pub mod consensus;
pub mod contract;
pub mod credentials;
pub mod discover;
pub mod document;
pub mod drift;
pub mod fleet;
pub mod lambda;
pub mod limits;
pub mod local;
pub mod metrics;
pub mod nagios;
pub mod net;
pub mod oauth2;
pub mod output;
pub mod outside;
pub mod pipeline;
pub mod pop3;
pub mod ports;
pub mod probe;
pub mod profile;
pub mod prom;
pub mod report;
pub mod roundtrip;
pub mod sasl;
pub mod serve;
pub mod smtp;
pub mod text;
pub mod vantage;
pub mod wire;
