//! The mail round trip: submit a signed probe message by SMTP, find it by
//! POP3, measure how long delivery took, and remove only the probe's own
//! messages.
//!
//! The layers that can send or remove mail live here and nowhere else, in
//! private modules: `submit` has MAIL, RCPT and DATA; `mailbox` has the
//! one POP3 session with UIDL, `TOP n 0` and DELE, whose DELE takes a
//! [`token::Verified`] proof that only [`token::Verifier`] makes. Every
//! other check keeps the "never changes a mailbox" guarantee by not being
//! able to name either.
//!
//! The rule, shown by compile-fail tests (`cargo test --doc`; each must
//! fail with the error code given, not merely fail):
//!
//! Code outside the round-trip engine cannot name the deleting session:
//!
//! ```compile_fail,E0603
//! use pop3_probe::roundtrip::mailbox::DeletingSession;
//! ```
//!
//! nor the submission that sends mail:
//!
//! ```compile_fail,E0603
//! use pop3_probe::roundtrip::submit::Submission;
//! ```
//!
//! The protocol layers have no such commands at all:
//!
//! ```compile_fail,E0432
//! use pop3_probe::pop3::command::Dele;
//! ```
//!
//! ```compile_fail,E0432
//! use pop3_probe::smtp::command::MailFrom;
//! ```
//!
//! The proof DELE takes cannot be made but by verifying a token: its fields
//! are private,
//!
//! ```compile_fail,E0451
//! use pop3_probe::roundtrip::token::{Token, Verified};
//! let forged = Verified { session: 1, msg: 1, uidl: String::new(), token: Token { seq: 1, sent_ms: 0 } };
//! ```
//!
//! and verifying a header value alone gives the token, not a proof:
//!
//! ```compile_fail,E0308
//! use pop3_probe::roundtrip::token::{SigningKey, Verified, Verifier};
//! let key = SigningKey::new("0123456789abcdef".to_string().into()).unwrap();
//! let v = Verifier::new("m", key);
//! let proof: Verified = v.verify_value("v1 s=1 t=0 h=x").unwrap();
//! ```
//!
//! Inside the crate, `DeletingSession::dele` takes a `Verified` by value
//! (pinned by `mailbox::tests::dele_takes_a_proof`, which stops compiling if
//! the signature changes), so a DELE without a verified token does not
//! compile there either.

mod mailbox;
pub mod message;
mod submit;
pub mod token;

use std::collections::HashSet;

use tokio::io::{AsyncRead, AsyncWrite};

pub(crate) use submit::{Address, Step};
use token::{Token, Verifier};

/// The most messages whose headers one sweep reads: a probe mailbox holds
/// a handful; a big one is read newest first, where new mail lands.
pub(crate) const MAX_TOPS: usize = 500;

/// Send the probe message over an authenticated SMTP session, then QUIT.
pub(crate) async fn submit<S: AsyncRead + AsyncWrite + Unpin>(
    session: crate::smtp::Authenticated<S>,
    from: &Address,
    to: &Address,
    message: &str,
) -> Result<crate::smtp::Reply, (Step, crate::smtp::Error)> {
    let mut submission = submit::Submission::open(session);
    let reply = submission.send(from, to, message).await?;
    // The message is queued; a lost QUIT changes nothing.
    let _ = submission.quit_nowait().await;
    Ok(reply)
}

/// One of the probe's messages found in the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub token: Token,
    pub uidl: String,
    /// The newest `Received:` header's time, ms since the epoch.
    pub received_ms: Option<i64>,
}

/// What one look into the mailbox saw and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Sweep {
    /// Wanted messages found (and deleted).
    pub found: Vec<Found>,
    /// The probe's own messages older than the stale age, deleted.
    pub stale_deleted: u64,
    /// The probe's own, neither wanted nor stale yet: left for later.
    pub own_kept: u64,
    /// Every other message, left alone.
    pub foreign: u64,
    pub messages: u64,
}

/// List the mailbox, read each message's headers, and DELE only messages
/// whose token verifies with `verifier`: the wanted ones (by sequence
/// number) and the probe's own older than `stale_before_ms`. QUIT commits
/// the deletions; on any error the connection is dropped without QUIT, so
/// the server deletes nothing (RFC 1939: DELE takes effect in UPDATE only).
/// `foreign_seen` carries UIDLs found foreign by an earlier sweep of the
/// same run, so polling does not read them again.
pub(crate) async fn sweep<S: AsyncRead + AsyncWrite + Unpin>(
    session: crate::pop3::Session<S>,
    verifier: &Verifier,
    wanted: &HashSet<u64>,
    stale_before_ms: i64,
    foreign_seen: &mut HashSet<String>,
) -> Result<Sweep, crate::pop3::Error> {
    let mut mailbox = mailbox::DeletingSession::open(session);
    let listing = mailbox.uidl().await?;
    let mut out = Sweep {
        messages: listing.len() as u64,
        ..Sweep::default()
    };
    for (read, (msg, uidl)) in listing.iter().rev().enumerate() {
        if foreign_seen.contains(uidl) || read >= MAX_TOPS {
            out.foreign += 1;
            continue;
        }
        let headers = mailbox.top_headers(*msg).await?;
        let proof = match verifier.verify_message(&headers) {
            Ok(proof) => proof,
            Err(_) => {
                foreign_seen.insert(uidl.clone());
                out.foreign += 1;
                continue;
            }
        };
        let token = proof.token();
        if wanted.contains(&token.seq) {
            out.found.push(Found {
                token,
                uidl: uidl.clone(),
                received_ms: headers.first("Received").and_then(message::received_ms),
            });
            mailbox.dele(proof).await?;
        } else if token.sent_ms < stale_before_ms {
            out.stale_deleted += 1;
            mailbox.dele(proof).await?;
        } else {
            out.own_kept += 1;
        }
    }
    debug_assert_eq!(
        mailbox.deleted() as u64,
        out.found.len() as u64 + out.stale_deleted
    );
    mailbox.quit().await?;
    Ok(out)
}
