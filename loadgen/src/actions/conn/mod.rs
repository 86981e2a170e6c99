//! The request path's HTTP client: one HTTP/1.1 keep-alive connection per virtual user (or open-model
//! worker), written and read by hand as wrk does — the request rendered into the connection's own
//! buffer and sent with one write, the answer read into its own buffer and parsed in place with
//! httparse (Content-Length, chunked, or until close). Once warmed up a request allocates nothing; a
//! connection costs two buffers and no task of its own. The bench measured the hyper client this
//! replaces at 54k requests per CPU-second against wrk's 70k, most of the difference in user space.
//!
//! A request that fails unanswered on a connection used before (the server closed it while idle) is
//! retried once on a fresh connection, as a pooled client does for an idempotent retry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::data::FailureKind;
use tls::Socket;
use wire::{Chunk, Framing, parse_chunk};

mod deadline;
mod stream;
mod tls;
pub mod wire;

pub use stream::Head;
pub use tls::{Tls, Trust, client_config};

/// What a request came to; the body (when kept) is `Conn::body`.
#[derive(Debug)]
pub enum Answer {
    Answered(u16),
    Failed(FailureKind, String),
}

/// Where requests go and the headers every one carries.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub host: String,
    /// `Bearer …`
    pub authorization: Option<String>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// https: the handshake after each connect.
    pub tls: Option<Tls>,
    /// The header naming the replica that served an answer, lowercase (`[target] served_by_header`).
    pub served_by: Option<Arc<str>>,
}

pub const INITIAL_READ: usize = 4096;
pub const MAX_ANSWER: usize = 64 << 20;
/// A buffer grown past this is given back after the answer.
pub const KEEP_BUFFER: usize = 64 << 10;

/// One user's connection and its buffers; reconnects on demand.
#[derive(Default)]
pub struct Conn {
    stream: Option<Socket>,
    /// The current connection has carried a request (a failure on it may be a stale keep-alive).
    used: bool,
    request: Vec<u8>,
    read: Vec<u8>,
    body: Vec<u8>,
    /// Where a streamed answer's body is (`stream.rs`).
    reading: stream::Reading,
    /// The request timeout's timer (`deadline.rs`).
    deadline: deadline::Deadline,
    /// Answer bytes read on connections closed since `take_bytes_read` last asked.
    closed_bytes_read: u64,
    /// The header naming the replica that served an answer (the endpoint's, kept at connect), and
    /// who served the last answer.
    served_by_header: Option<Arc<str>>,
    served_by: ServedBy,
}

/// The value of the header naming the replica that served the last answer, copied out of the read
/// buffer (which the body then reuses) into a fixed one: no allocation per answer.
pub struct ServedBy {
    bytes: [u8; ServedBy::MAX],
    /// Bytes kept; `None`: the answer had no such header.
    len: Option<u8>,
}

impl Default for ServedBy {
    fn default() -> Self {
        ServedBy {
            bytes: [0; ServedBy::MAX],
            len: None,
        }
    }
}

impl ServedBy {
    /// Longer names are cut to this.
    const MAX: usize = 64;

    fn keep(&mut self, value: Option<&[u8]>) {
        self.len = value.map(|v| {
            let n = v.len().min(Self::MAX);
            self.bytes[..n].copy_from_slice(&v[..n]);
            n as u8
        });
    }

    pub fn get(&self) -> Option<&[u8]> {
        self.len.map(|n| &self.bytes[..usize::from(n)])
    }
}

/// Why an exchange failed, before it is told as a failure kind.
enum Broken {
    /// The connection ended before any byte of the answer: maybe a stale keep-alive.
    Unanswered(String),
    Protocol(String),
    /// An answer longer than [`MAX_ANSWER`].
    TooLarge,
}

impl Broken {
    fn failure(self) -> (FailureKind, String) {
        match self {
            Broken::Unanswered(msg) | Broken::Protocol(msg) => (FailureKind::Protocol, msg),
            Broken::TooLarge => (
                FailureKind::TooLarge,
                format!("an answer larger than {MAX_ANSWER} bytes"),
            ),
        }
    }
}

impl Conn {
    /// The body of the last answer, when `send` was asked to keep it.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The replica that served the last answer, when the endpoint names its header and the answer
    /// carried it.
    pub fn served_by(&self) -> Option<&[u8]> {
        self.served_by.get()
    }

    /// Bytes of answers read since the last call (the whole of the last exchange's answer, after
    /// `send`), on this connection and on any it closed since.
    pub fn take_bytes_read(&mut self) -> u64 {
        let open = self.stream.as_mut().map_or(0, |s| std::mem::take(&mut s.bytes_read));
        open + std::mem::take(&mut self.closed_bytes_read)
    }

    /// Close the connection (dropping it), keeping the count of what was read on it.
    fn close(&mut self) -> Option<Socket> {
        let stream = self.stream.take()?;
        self.closed_bytes_read += stream.bytes_read;
        Some(stream)
    }

    async fn connect(&mut self, ep: &Endpoint) -> Result<(), Answer> {
        // Boxed: the TLS handshake's state would otherwise size every request's future, and so every
        // user's task, for a step taken once per connection.
        let stream = Box::pin(open(ep))
            .await
            .map_err(|e| Answer::Failed(FailureKind::Connect, e.to_string()))?;
        self.stream = Some(stream);
        self.used = false;
        if self.served_by_header.is_none() {
            self.served_by_header.clone_from(&ep.served_by);
        }
        Ok(())
    }

    /// The request into the connection's buffer: request line, host, authorization, `headers`, then
    /// the body (typed JSON unless `headers` name a content-type).
    fn render<H: AsRef<str>>(
        &mut self,
        ep: &Endpoint,
        method: &str,
        path_and_query: &str,
        headers: &[(H, H)],
        body: Option<&str>,
    ) {
        self.served_by.keep(None);
        wire::render_request(&mut self.request, ep, method, path_and_query, headers, body);
    }

    /// Send one request (with `headers` besides host and authorization) and read the whole answer,
    /// within the endpoint's timeout.
    pub async fn send(
        &mut self,
        ep: &Endpoint,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Option<&str>,
        keep_body: bool,
    ) -> Answer {
        self.render(ep, method, path_and_query, headers, body);
        let mut deadline = std::mem::take(&mut self.deadline);
        let answer = deadline
            .within(ep.timeout, self.send_rendered(ep, method == "HEAD", keep_body))
            .await;
        self.deadline = deadline;
        match answer {
            Some(answer) => answer,
            None => {
                // The late answer may still arrive on this connection: never reuse it.
                self.close();
                Answer::Failed(FailureKind::Timeout, "timed out".into())
            }
        }
    }

    async fn send_rendered(&mut self, ep: &Endpoint, head: bool, keep_body: bool) -> Answer {
        let exchanged = self
            .with_retry(ep, async move |c| {
                let exchanged = c.exchange(head, keep_body).await;
                c.trim();
                exchanged
            })
            .await;
        match exchanged {
            Ok((status, keep_alive)) => {
                if !keep_alive {
                    self.close();
                }
                Answer::Answered(status)
            }
            Err(failed) => failed,
        }
    }

    /// Run `once` on the connection, connecting first when there is none. A connection used before
    /// that fails unanswered (the server closed it while idle) is replaced and `once` run again, once.
    async fn with_retry<T>(
        &mut self,
        ep: &Endpoint,
        mut once: impl AsyncFnMut(&mut Conn) -> Result<T, Broken>,
    ) -> Result<T, Answer> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                self.connect(ep).await?;
            }
            let reused = self.used;
            self.used = true;
            match once(self).await {
                Ok(done) => return Ok(done),
                Err(broken) => {
                    self.close();
                    match broken {
                        Broken::Unanswered(_) if reused && attempt == 0 => continue,
                        broken => {
                            let (kind, msg) = broken.failure();
                            return Err(Answer::Failed(kind, msg));
                        }
                    }
                }
            }
        }
        Err(Answer::Failed(FailureKind::Protocol, "connection closed".into()))
    }

    /// Give back buffers a rare large answer (a long head, a big chunked or kept body) grew, so a user's
    /// memory stays flat over a long run.
    fn trim(&mut self) {
        if self.read.len() > KEEP_BUFFER {
            self.read = vec![0; INITIAL_READ];
        }
        if self.body.capacity() > KEEP_BUFFER {
            self.body = Vec::new();
        }
    }

    /// Read more into `read[filled..]`, growing it when full; `Ok(0)` is the end of the stream.
    async fn fill(stream: &mut Socket, read: &mut Vec<u8>, filled: usize) -> Result<usize, Broken> {
        if filled == read.len() {
            if read.len() >= MAX_ANSWER {
                return Err(Broken::TooLarge);
            }
            read.resize((read.len() * 2).max(INITIAL_READ), 0);
        }
        match stream.read(&mut read[filled..]).await {
            // A TLS peer that closes without close_notify: the end, as for plain TCP (a body cut
            // short is still seen by its framing).
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
            read => read.map_err(|e| Broken::Protocol(format!("reading the answer: {e}"))),
        }
    }

    /// Write the rendered request and read one answer: (status, keep-alive).
    async fn exchange(&mut self, head: bool, keep_body: bool) -> Result<(u16, bool), Broken> {
        let Conn {
            stream,
            request,
            read,
            body,
            served_by_header,
            served_by: served,
            ..
        } = self;
        let stream = stream.as_mut().expect("connected");
        body.clear();
        if let Err(e) = write_request(stream, request).await {
            return Err(Broken::Unanswered(format!("writing the request: {e}")));
        }
        if read.is_empty() {
            read.resize(INITIAL_READ, 0);
        }
        let mut filled = 0;
        // Head.
        let (status, header_len, framing, keep_alive) = loop {
            let n = Self::fill(stream, read, filled).await?;
            if n == 0 {
                return Err(if filled == 0 {
                    Broken::Unanswered("connection closed before an answer".into())
                } else {
                    Broken::Protocol("connection closed inside the answer's head".into())
                });
            }
            filled += n;
            match wire::parse_head(&read[..filled], head, served_by_header.as_deref()) {
                Ok(None) => continue,
                Err(e) => return Err(Broken::Protocol(e)),
                Ok(Some(h)) => {
                    served.keep(h.served_by.map(|r| &read[r]));
                    break (h.status, h.len, h.framing, h.keep_alive);
                }
            }
        };
        // Body.
        let mut pos = header_len;
        match framing {
            Framing::Length(n) => {
                // What came with the head, then the rest read through the same buffer from its start:
                // the buffer stays at its size whatever the body's (an unused body is not kept at all;
                // one to keep is refused at once when its announced length is past the cap).
                if keep_body && n > MAX_ANSWER {
                    return Err(Broken::TooLarge);
                }
                let in_buf = (filled - pos).min(n);
                if keep_body {
                    body.extend_from_slice(&read[pos..pos + in_buf]);
                }
                let mut remaining = n - in_buf;
                while remaining > 0 {
                    let got = Self::fill(stream, read, 0).await?;
                    if got == 0 {
                        return Err(Broken::Protocol("connection closed inside the answer's body".into()));
                    }
                    let take = got.min(remaining);
                    if keep_body {
                        body.extend_from_slice(&read[..take]);
                    }
                    remaining -= take;
                }
                Ok((status, keep_alive))
            }
            Framing::UntilClose => {
                if keep_body {
                    body.extend_from_slice(&read[pos..filled]);
                }
                loop {
                    let got = Self::fill(stream, read, 0).await?;
                    if got == 0 {
                        break;
                    }
                    if keep_body {
                        if body.len() + got > MAX_ANSWER {
                            return Err(Broken::TooLarge);
                        }
                        body.extend_from_slice(&read[..got]);
                    }
                }
                Ok((status, false))
            }
            Framing::Chunked => loop {
                // A chunk: size line, data, CRLF; the last chunk has size 0 (trailers are skipped).
                match parse_chunk(&read[pos..filled]) {
                    Chunk::Incomplete => {
                        let got = Self::fill(stream, read, filled).await?;
                        if got == 0 {
                            return Err(Broken::Protocol("connection closed inside a chunked body".into()));
                        }
                        filled += got;
                    }
                    Chunk::Malformed => return Err(Broken::Protocol("a malformed chunked body".into())),
                    Chunk::Data { start, len, next } => {
                        if keep_body {
                            if body.len() + len > MAX_ANSWER {
                                return Err(Broken::TooLarge);
                            }
                            body.extend_from_slice(&read[pos + start..pos + start + len]);
                        }
                        pos += next;
                    }
                    Chunk::Last => return Ok((status, keep_alive)),
                }
            },
        }
    }
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect: {0}")]
    Tcp(std::io::Error),
    /// The server's certificate was refused, or it does not speak TLS.
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("connect timed out")]
    TimedOut,
}

/// A connection to the endpoint (TCP, and TLS for https), within its connect timeout.
async fn open(ep: &Endpoint) -> Result<Socket, ConnectError> {
    tokio::time::timeout(ep.connect_timeout, async {
        let tcp = TcpStream::connect(ep.addr).await.map_err(ConnectError::Tcp)?;
        let _ = tcp.set_nodelay(true);
        match &ep.tls {
            None => Ok(Socket::plain(tcp)),
            Some(tls) => tls.handshake(tcp).await.map_err(ConnectError::Tls),
        }
    })
    .await
    .unwrap_or(Err(ConnectError::TimedOut))
}

/// Whether a connection (and its TLS handshake) can be made at all, before any load is started.
pub async fn probe(ep: &Endpoint) -> Result<(), ConnectError> {
    open(ep).await.map(drop)
}

/// Write a rendered request and push it out (TLS holds written bytes until flushed; plain TCP does not).
async fn write_request(stream: &mut Socket, request: &[u8]) -> std::io::Result<()> {
    stream.write_all(request).await?;
    stream.flush().await
}
