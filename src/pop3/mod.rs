//! The POP3 protocol: commands as types, response parsing split by RFC,
//! and the client states. Knows nothing of monitoring.

mod capa;
mod client;
pub mod command;
pub mod response;

pub use capa::Capabilities;
pub(crate) use client::Conn;
pub use client::{
    Client, Direction, Error, LoginFailure, OauthLogin, Session, StlsOutcome, Transcript, WireLine,
    MAX_LINE, MAX_LINES,
};
pub use response::{Greeting, MaildropStat, ResponseCode, Status, StatusLine};
