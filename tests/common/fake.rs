//! Scripted POP3 servers on 127.0.0.1:0 for what real servers won't do:
//! hang, trickle, lie, close mid-reply. Every command received is logged so
//! tests can assert what the probe sent.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the server does in answer to one command (or at connect time).
#[derive(Clone, Debug)]
pub enum Reply {
    /// Send these bytes as they are (include CRLF yourself).
    Raw(Vec<u8>),
    /// Send a line, CRLF added.
    Line(String),
    /// Wait, then send a line.
    Delayed(Duration, String),
    /// Never answer (until the client gives up).
    Hang,
    /// Close the connection.
    Close,
}

pub fn line(s: &str) -> Reply {
    Reply::Line(s.to_string())
}

type Handler = dyn Fn(&str) -> Reply + Send + Sync;

pub struct Fake {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every command line the server received, as sent.
    pub fn commands(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// The commands, once `last` has arrived: the probe sends QUIT and
    /// leaves without waiting, so the server may log it a moment later.
    pub async fn commands_until(&self, last: &str) -> Vec<String> {
        for _ in 0..200 {
            let got = self.commands();
            if got.last().map(String::as_str) == Some(last) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.commands()
    }
}

/// Start a server that sends `greeting` on connect, then answers each
/// command line with `handler(line)`.
pub async fn spawn(
    greeting: Reply,
    handler: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let handler: Arc<Handler> = Arc::new(handler);
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let log = log2.clone();
            let greeting = greeting.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut r = BufReader::new(r);
                if !send(&mut w, &greeting).await {
                    return;
                }
                let mut buf = String::new();
                loop {
                    buf.clear();
                    match r.read_line(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let cmd = buf.trim_end_matches(['\r', '\n']).to_string();
                    log.lock().unwrap().push(cmd.clone());
                    let reply = handler(&cmd);
                    if !send(&mut w, &reply).await {
                        return;
                    }
                }
            });
        }
    });
    Fake { addr, log }
}

/// Returns false when the connection should end.
async fn send(w: &mut tokio::net::tcp::OwnedWriteHalf, reply: &Reply) -> bool {
    match reply {
        Reply::Raw(b) => w.write_all(b).await.is_ok(),
        Reply::Line(l) => w.write_all(format!("{l}\r\n").as_bytes()).await.is_ok(),
        Reply::Delayed(d, l) => {
            tokio::time::sleep(*d).await;
            w.write_all(format!("{l}\r\n").as_bytes()).await.is_ok()
        }
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            false
        }
        Reply::Close => false,
    }
}

/// A well-behaved plaintext server: CAPA with `capa` lines, accepts any
/// USER/PASS/APOP/AUTH, STAT 2 320.
pub fn polite(capa: &'static [&'static str]) -> impl Fn(&str) -> Reply + Send + Sync {
    move |cmd: &str| {
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "CAPA" => {
                let mut body = String::from("+OK\r\n");
                for c in capa {
                    body.push_str(c);
                    body.push_str("\r\n");
                }
                body.push_str(".\r\n");
                Reply::Raw(body.into_bytes())
            }
            "USER" | "PASS" | "APOP" | "AUTH" => line("+OK"),
            "STAT" => line("+OK 2 320"),
            "QUIT" => line("+OK bye"),
            _ => line("-ERR unknown command"),
        }
    }
}
