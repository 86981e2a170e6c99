//! Connections the gateway can cut. A session whose client stops reading ends by send timeout, but
//! its connection would stay open — hyper keeps waiting to write the frames already handed to it —
//! holding their memory for as long as the client likes. Every accepted socket is wrapped so that a
//! [`ConnHandle`] (given to handlers as connect info) can abort it: the next read or write fails, hyper
//! drops the connection, and everything it held is freed.
//!
//! The same wrapper bounds slow and idle clients (slowloris), which `axum::serve` does not: once a
//! request's first byte has come, its head must be complete (`\r\n\r\n`) within the head timeout,
//! or the connection is cut; a connection with no request in progress (just accepted, or answered)
//! and no stream is closed after the idle timeout; and the listener accepts at most `max_connections`
//! at once (the rest wait in the backlog), so no number of idle sockets exhausts the process's
//! descriptors or memory.

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
    /// The connection carries a stream (SSE), which may be quiet from both sides for a while.
    streaming: AtomicBool,
    /// The tasks last left waiting on the socket (reader, writer), to wake when aborting.
    wakers: Mutex<[Option<Waker>; 2]>,
}

const READ: usize = 0;
const WRITE: usize = 1;

impl ConnHandle {
    /// The answer on this connection is a stream: no idle timeout while the returned guard (held by
    /// the stream's body) lives.
    pub fn streaming(&self) -> Streaming {
        self.0.streaming.store(true, Ordering::Relaxed);
        Streaming(self.clone())
    }

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

/// A connection carrying a stream; dropped with the stream's body.
pub struct Streaming(ConnHandle);

impl Drop for Streaming {
    fn drop(&mut self) {
        self.0.0.streaming.store(false, Ordering::Relaxed);
        // The reader may be parked with no timer armed (a stream is never idle): let it see the change.
        if let Some(w) = self.0.0.wakers.lock().expect("waker lock")[READ].take() {
            w.wake();
        }
    }
}

/// A TCP stream that fails once its handle aborts it, when a request head takes too long, or when it
/// has sat idle between requests for too long.
pub struct CuttableStream {
    inner: TcpStream,
    handle: ConnHandle,
    clock: Clock,
    /// Read while a stream is served. Off (legacy), a client's close is seen only once a write fails:
    /// until then its socket sits in CLOSE_WAIT, as behind the field's servers that read no request
    /// while they stream an answer.
    read_streams: bool,
    /// A place among the listener's connections, given back when the stream is dropped.
    _slot: OwnedSemaphorePermit,
}

/// Where the connection is between the client and the gateway, which decides its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request in progress (just accepted, or answered): the idle deadline runs from the gateway's
    /// last write, so a stream the gateway keeps writing to is not idle.
    Idle,
    /// A request head has begun and not ended: the head deadline runs from its first byte.
    Head,
    /// The head has ended and the gateway has not yet answered: the client waits (a body, or a slow
    /// handler), with no deadline here.
    Request,
}

/// Why a connection was cut.
enum Expired {
    Head,
    Idle,
}

/// The connection's two clocks on one timer, re-armed at phase changes (about twice per request), not
/// per read or write.
struct Clock {
    head_timeout: Duration,
    /// `None`: idle connections are kept until the client closes them.
    idle_timeout: Option<Duration>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    phase: Phase,
    /// In `Idle`, when the gateway last wrote; the deadline is moved up to it lazily when it fires.
    last_write: tokio::time::Instant,
    /// The last bytes read, for a `\r\n\r\n` split across reads.
    tail: [u8; 3],
}

impl Clock {
    fn new(head_timeout: Duration, idle_timeout: Option<Duration>) -> Clock {
        let now = tokio::time::Instant::now();
        Clock {
            head_timeout,
            idle_timeout,
            deadline: Box::pin(tokio::time::sleep_until(now + idle_timeout.unwrap_or(head_timeout))),
            phase: Phase::Idle,
            last_write: now,
            tail: [0; 3],
        }
    }

    /// Bytes have been read. A head starts (the head deadline armed) or ends; bytes after a head, before
    /// the answer, are its body and change nothing. No allocation: the end of a head split across reads
    /// is found in the last three bytes kept and the first three new.
    fn read(&mut self, bytes: &[u8]) {
        if bytes.is_empty() || self.phase == Phase::Request {
            return;
        }
        let mut seam = [0u8; 6];
        let first = bytes.len().min(3);
        seam[..3].copy_from_slice(&self.tail);
        seam[3..3 + first].copy_from_slice(&bytes[..first]);
        let ended =
            seam[..3 + first].windows(4).any(|w| w == b"\r\n\r\n") || bytes.windows(4).any(|w| w == b"\r\n\r\n");
        let began = self.phase == Phase::Idle;
        if ended {
            self.phase = Phase::Request;
        } else if began {
            self.phase = Phase::Head;
            let at = tokio::time::Instant::now() + self.head_timeout;
            self.deadline.as_mut().reset(at);
        }
        let n = bytes.len().min(3);
        self.tail.rotate_left(n);
        self.tail[3 - n..].copy_from_slice(&bytes[bytes.len() - n..]);
    }

    /// The gateway writes: whatever came before was read (a head, a body), so the connection is idle
    /// from here until the client's next byte. An interim `100 Continue` is not an answer: the body
    /// is still to come.
    fn wrote(&mut self, bytes: &[u8], cx: &mut Context<'_>) {
        if self.phase == Phase::Request && bytes.starts_with(b"HTTP/1.1 100 ") {
            return;
        }
        self.last_write = tokio::time::Instant::now();
        if self.phase != Phase::Idle {
            self.phase = Phase::Idle;
            self.tail = [0; 3];
            if let Some(idle) = self.idle_timeout {
                self.deadline.as_mut().reset(self.last_write + idle);
                // hyper may not read again until woken (its last read was left pending before the
                // answer): the timer wakes the connection's task, which is this one.
                let _ = self.deadline.as_mut().poll(cx);
            }
        }
    }

    /// Whether a deadline has passed (registering the waker to be told when it does). A streaming
    /// answer (SSE) is never idle: its keepalives are the gateway's to send.
    fn expired(&mut self, streaming: bool, cx: &mut Context<'_>) -> Option<Expired> {
        match self.phase {
            Phase::Request => None,
            Phase::Head => self.deadline.as_mut().poll(cx).is_ready().then_some(Expired::Head),
            Phase::Idle if streaming => None,
            Phase::Idle => {
                let idle = self.idle_timeout?;
                if self.deadline.as_mut().poll(cx).is_pending() {
                    return None;
                }
                let due = self.last_write + idle;
                if due <= tokio::time::Instant::now() {
                    return Some(Expired::Idle);
                }
                // Written to since it was armed: wait the rest.
                self.deadline.as_mut().reset(due);
                let _ = self.deadline.as_mut().poll(cx);
                None
            }
        }
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
        if !self.read_streams && self.handle.0.streaming.load(Ordering::Relaxed) {
            self.handle.check()?;
            // The stream's end (its guard's drop) or a cut wakes the parked reader; checked again
            // after parking so neither is missed.
            self.handle.park(READ, cx);
            self.handle.check()?;
            if self.handle.0.streaming.load(Ordering::Relaxed) {
                return Poll::Pending;
            }
        }
        let before = buf.filled().len();
        let polled = self.guarded(READ, cx, |s, cx| s.poll_read(cx, buf));
        if let Poll::Ready(Ok(())) = polled {
            self.clock.read(&buf.filled()[before..]);
        }
        if polled.is_pending() {
            let streaming = self.handle.0.streaming.load(Ordering::Relaxed);
            match self.clock.expired(streaming, cx) {
                Some(Expired::Head) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "a request head took longer than the head timeout",
                    )));
                }
                // Closing an idle connection is an end of input to hyper, as a client's close is.
                Some(Expired::Idle) => return Poll::Ready(Ok(())),
                None => {}
            }
        }
        polled
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.clock.wrote(buf, cx);
        self.guarded(WRITE, cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        self.clock.wrote(first, cx);
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
    idle_timeout: Option<Duration>,
    read_streams: bool,
}

impl CuttableListener {
    pub fn new(
        listener: TcpListener,
        max_connections: usize,
        head_timeout: Duration,
        idle_timeout: Option<Duration>,
    ) -> CuttableListener {
        CuttableListener {
            listener,
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
            head_timeout,
            idle_timeout,
            read_streams: true,
        }
    }

    /// Whether a connection is read while it carries a stream (`false`: the legacy profile's, see
    /// [`CuttableStream`]'s `read_streams`).
    pub fn reading_streams(mut self, read: bool) -> CuttableListener {
        self.read_streams = read;
        self
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
                        clock: Clock::new(self.head_timeout, self.idle_timeout),
                        read_streams: self.read_streams,
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
