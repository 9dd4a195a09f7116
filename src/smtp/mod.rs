//! The SMTP protocol as far as a monitor needs it: the banner, EHLO (HELO
//! for old servers), STARTTLS, AUTH PLAIN and LOGIN, QUIT. Commands as
//! types, replies parsed by RFC 5321 with RFC 3463 enhanced codes, client
//! states as types. Knows nothing of monitoring; the check itself is
//! `probe::smtp`.
//!
//! There is no MAIL, RCPT, DATA, VRFY or EXPN: a probe never sends mail and
//! never asks about mailboxes.

mod client;
pub mod command;
pub mod ehlo;
pub mod reply;

pub use client::{AuthFailure, Authenticated, Client, Error, Session, StartTlsOutcome};
pub use command::HelloName;
pub use ehlo::{banner_software, Extensions};
pub use reply::{EnhancedCode, Reply, MAX_REPLY_LINES};
