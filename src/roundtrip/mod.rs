//! The mail round trip: submit a signed probe message by SMTP, find it by
//! POP3, measure how long delivery took, and remove only the probe's own
//! messages.
//!
//! The layers that can send or remove mail live here and nowhere else, in
//! private modules: [`submit`] has MAIL, RCPT and DATA; `mailbox` has the
//! one POP3 session with UIDL, `TOP n 0` and DELE, whose DELE takes a
//! [`token::Verified`] proof that only [`token::Verifier`] makes. Every
//! other check keeps the "never changes a mailbox" guarantee by not being
//! able to name either.

mod mailbox;
pub mod message;
mod submit;
pub mod token;
