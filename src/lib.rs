pub mod net;
pub mod output;
pub mod pop3;
pub mod probe;
