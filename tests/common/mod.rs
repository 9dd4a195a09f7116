#![allow(dead_code)]
pub mod dovecot;
pub mod fake;
pub mod moto;
