//! Connections the gateway can cut. A session whose client stops reading ends by send timeout, but
//! its connection would stay open — hyper keeps waiting to write the frames already handed to it —
//! holding their memory for as long as the client likes. Every accepted socket is wrapped so that a
//! [`ConnHandle`] (given to handlers as connect info) can abort it: the next read or write fails, hyper
//! drops the connection, and everything it held is freed.
//!
//! The same wrapper bounds slow clients (slowloris), which `axum::serve` does not: once a request's
//! first byte has come, its head must be complete (`\r\n\r\n`) within the head timeout, or the
//! connection is cut; and the listener accepts at most `max_connections` at once (the rest wait in the
//! backlog), so no number of idle sockets exhausts the process's descriptors or memory.

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Cuts one connection.
#[derive(Clone, Default)]
pub struct ConnHandle(Arc<Shared>);

#[derive(Default)]
struct Shared {
    aborted: AtomicBool,
    /// The tasks last left waiting on the socket (reader, writer), to wake when aborting.
    wakers: Mutex<[Option<Waker>; 2]>,
}

const READ: usize = 0;
const WRITE: usize = 1;

impl ConnHandle {
    pub fn abort(&self) {
        self.0.aborted.store(true, Ordering::Release);
        let wakers = std::mem::take(&mut *self.0.wakers.lock().expect("waker lock"));
        wakers.into_iter().flatten().for_each(Waker::wake);
    }

    fn check(&self) -> io::Result<()> {
        if self.0.aborted.load(Ordering::Acquire) {
            Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection cut by the gateway",
            ))
        } else {
            Ok(())
        }
    }

    fn park(&self, slot: usize, cx: &Context<'_>) {
        let mut wakers = self.0.wakers.lock().expect("waker lock");
        match &wakers[slot] {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => wakers[slot] = Some(cx.waker().clone()),
        }
    }
}

/// A TCP stream that fails once its handle aborts it, or when a request head takes too long.
pub struct CuttableStream {
    inner: TcpStream,
    handle: ConnHandle,
    head: HeadClock,
    /// A place among the listener's connections, given back when the stream is dropped.
    _slot: OwnedSemaphorePermit,
}

/// Where the connection is in reading a request head: between requests (no deadline: an idle
/// keep-alive connection may wait), or inside one since its first byte, with the deadline armed.
struct HeadClock {
    timeout: Duration,
    /// One timer per connection, re-armed per head (`armed`), not made per request.
    deadline: Pin<Box<tokio::time::Sleep>>,
    armed: bool,
    /// The last bytes read, for a `\r\n\r\n` split across reads.
    tail: [u8; 3],
}

impl HeadClock {
    fn new(timeout: Duration) -> HeadClock {
        HeadClock {
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            armed: false,
            tail: [0; 3],
        }
    }

    /// Bytes have been read: a head starts (the deadline armed) or ends (disarmed). No allocation: the
    /// end of a head split across reads is found in the last three bytes kept and the first three new.
    fn read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut seam = [0u8; 6];
        let first = bytes.len().min(3);
        seam[..3].copy_from_slice(&self.tail);
        seam[3..3 + first].copy_from_slice(&bytes[..first]);
        let ended =
            seam[..3 + first].windows(4).any(|w| w == b"\r\n\r\n") || bytes.windows(4).any(|w| w == b"\r\n\r\n");
        if ended {
            self.armed = false;
        } else if !self.armed {
            self.armed = true;
            let at = tokio::time::Instant::now() + self.timeout;
            self.deadline.as_mut().reset(at);
        }
        let n = bytes.len().min(3);
        self.tail.rotate_left(n);
        self.tail[3 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    }

    /// The gateway answers: whatever came before was read (a body, a head), so no head is pending.
    fn wrote(&mut self) {
        self.armed = false;
    }

    /// Whether the deadline has passed (registering the waker to be told when it does).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        self.armed && self.deadline.as_mut().poll(cx).is_ready()
    }
}

impl CuttableStream {
    /// Run one poll; remember the waker when it is left pending, and check for an abort after, so
    /// an abort racing with the poll is not lost.
    fn guarded<T>(
        &mut self,
        slot: usize,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        self.handle.check()?;
        match poll(Pin::new(&mut self.inner), cx) {
            Poll::Pending => {
                self.handle.park(slot, cx);
                self.handle.check()?;
                Poll::Pending
            }
            ready => ready,
        }
    }
}

impl AsyncRead for CuttableStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.guarded(READ, cx, |s, cx| s.poll_read(cx, buf));
        if let Poll::Ready(Ok(())) = polled {
            self.head.read(&buf.filled()[before..]);
        }
        if polled.is_pending() && self.head.expired(cx) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "a request head took longer than the head timeout",
            )));
        }
        polled
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.head.wrote();
        self.guarded(WRITE, cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.head.wrote();
        self.guarded(WRITE, cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.guarded(WRITE, cx, |s, cx| s.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A TCP listener whose connections are [`CuttableStream`]s, at most `slots`' worth at once.
pub struct CuttableListener {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    head_timeout: Duration,
}

impl CuttableListener {
    pub fn new(listener: TcpListener, max_connections: usize, head_timeout: Duration) -> CuttableListener {
        CuttableListener {
            listener,
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            head_timeout,
        }
    }
}

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // A place first: at the cap, new connections wait in the listen backlog, not in memory.
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let io = CuttableStream {
                        inner: stream,
                        handle: ConnHandle::default(),
                        head: HeadClock::new(self.head_timeout),
                        _slot: slot,
                    };
                    return (io, addr);
                }
                // Out of file descriptors and the like: wait rather than spin (as axum does).
                Err(e) if !is_connection_error(&e) => {
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(_) => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

impl Connected<IncomingStream<'_, CuttableListener>> for ConnHandle {
    fn connect_info(stream: IncomingStream<'_, CuttableListener>) -> Self {
        stream.io().handle.clone()
    }
}
