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
