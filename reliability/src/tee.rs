//! A recording TCP proxy on loopback: every byte in both directions is passed on
//! unchanged and also appended to a shared buffer. Put between two processes it shows
//! exactly what went over the wire (headers with signatures, bodies with tokens)
//! without changing either side, and it streams (SSE works through it). Its target can
//! be set after it listens (the server's port is known only once it runs). Closing it
//! (`set_target(None)`) makes the target unreachable as a closed port would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

type Stream = Arc<Mutex<Vec<u8>>>;
type Streams = Arc<Mutex<Vec<Stream>>>;

/// A recording proxy.
#[derive(Debug)]
pub struct Tee {
    addr: SocketAddr,
    target: Arc<Mutex<Option<SocketAddr>>>,
    captured: Streams,
    task: tokio::task::JoinHandle<()>,
}

impl Tee {
    /// Listens on `127.0.0.1:0`; connections are refused (closed at once) until a
    /// target is set.
    pub async fn start(target: Option<SocketAddr>) -> crate::Result<Tee> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(crate::io("bind the tee"))?;
        let addr = listener.local_addr().map_err(crate::io("tee address"))?;
        let target = Arc::new(Mutex::new(target));
        let captured = Arc::new(Mutex::new(Vec::new()));
        let (t, c) = (target.clone(), captured.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let to = *t.lock().unwrap_or_else(|e| e.into_inner());
                let c = c.clone();
                tokio::spawn(async move {
                    let Some(to) = to else { return };
                    let Ok(outbound) = TcpStream::connect(to).await else {
                        return;
                    };
                    pipe(inbound, outbound, c).await;
                });
            }
        });
        Ok(Tee {
            addr,
            target,
            captured,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where new connections go (`None`: refused).
    pub fn set_target(&self, target: Option<SocketAddr>) {
        *self.target.lock().unwrap_or_else(|e| e.into_inner()) = target;
    }

    /// Every byte seen so far: one entry per connection and direction, in order.
    pub fn captured(&self) -> Vec<Vec<u8>> {
        let streams = self.captured.lock().unwrap_or_else(|e| e.into_inner());
        streams
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .collect()
    }
}

impl Drop for Tee {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The target address of a base URL `http://HOST:PORT[/...]`.
pub fn addr_of(url: &str) -> SocketAddr {
    let rest = url.trim_start_matches("http://");
    let hostport = rest.split('/').next().unwrap_or(rest);
    hostport.parse().expect("a loopback http://IP:PORT URL")
}

async fn pipe(a: TcpStream, b: TcpStream, streams: Streams) {
    let (mut ar, mut aw) = a.into_split();
    let (mut br, mut bw) = b.into_split();
    let c1 = Stream::default();
    let captured = Stream::default();
    {
        let mut all = streams.lock().unwrap_or_else(|e| e.into_inner());
        all.push(c1.clone());
        all.push(captured.clone());
    }
    let up = async move {
        let mut buf = vec![0_u8; 16 * 1024];
        loop {
            match ar.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    c1.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]);
                    if bw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = bw.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0_u8; 16 * 1024];
        loop {
            match br.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    captured
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]);
                    if aw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = aw.shutdown().await;
    };
    tokio::join!(up, down);
}
