//! The POP3 protocol: commands as types, response parsing split by RFC,
//! and the client states. Knows nothing of monitoring; lines, the
//! transcript and the capability record are `wire`'s, the SASL mechanisms
//! `sasl`'s.

mod capa;
mod client;
pub mod command;
pub mod response;

pub use client::{Client, Error, LoginFailure, OauthLogin, Session, StlsOutcome, MAX_LINES};
pub use response::{Greeting, MaildropStat, ResponseCode, Status, StatusLine};
