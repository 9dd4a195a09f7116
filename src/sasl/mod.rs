//! SASL mechanisms shared by POP3 and SMTP.

pub mod oauth;
