pub mod check;
pub mod discover;
pub mod init;
pub mod report;
pub mod run;
pub mod serve;
