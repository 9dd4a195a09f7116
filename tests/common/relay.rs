//! A "host" in front of real servers: one loopback port per service, each
//! relayed to a real server's port. Taking the host down closes its
//! listeners (connections are refused, as on a host whose services are
//! gone); bringing it up binds the same ports again.

use std::sync::Mutex;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct Host {
    /// (our port, the real server's port)
    routes: Mutex<Vec<(u16, u16)>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Host {
    /// A host relaying to each of `upstreams` (ports on 127.0.0.1).
    pub async fn new(upstreams: &[u16]) -> Host {
        let mut routes = Vec::new();
        let mut tasks = Vec::new();
        for &up in upstreams {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            routes.push((listener.local_addr().unwrap().port(), up));
            tasks.push(serve(listener, up));
        }
        Host {
            routes: Mutex::new(routes),
            tasks: Mutex::new(tasks),
        }
    }

    /// The port on this host that reaches `upstream`.
    pub fn port(&self, upstream: u16) -> u16 {
        let routes = self.routes.lock().unwrap();
        routes.iter().find(|r| r.1 == upstream).unwrap().0
    }

    /// The port that reached `from` now reaches `to`: the service behind
    /// the same address was replaced (reconfigured, moved).
    pub async fn reroute(&self, from: u16, to: u16) {
        self.down();
        for r in self.routes.lock().unwrap().iter_mut() {
            if r.1 == from {
                r.1 = to;
            }
        }
        self.up().await;
    }

    /// Every listener closed: connections are refused.
    pub fn down(&self) {
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
        // Give the aborted tasks a moment to drop their listeners.
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    /// The same ports listen again.
    pub async fn up(&self) {
        let mut tasks = Vec::new();
        let routes = self.routes.lock().unwrap().clone();
        for (port, up) in routes {
            // The port was ours a moment ago; retry briefly in case the
            // aborted listener is still being dropped.
            let mut tries = 0;
            let listener = loop {
                match TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(l) => break l,
                    Err(e) if tries < 50 => {
                        tries += 1;
                        let _ = e;
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    Err(e) => panic!("cannot bind 127.0.0.1:{port} again: {e}"),
                }
            };
            tasks.push(serve(listener, up));
        }
        *self.tasks.lock().unwrap() = tasks;
    }
}

fn serve(listener: TcpListener, upstream: u16) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Ok((mut c, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                    let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
                }
            });
        }
    })
}
