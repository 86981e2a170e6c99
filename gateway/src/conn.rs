//! Connections the gateway can cut. A session whose client stops reading ends by send timeout, but
//! its connection would stay open — hyper keeps waiting to write the frames already handed to it —
//! holding their memory for as long as the client likes. Every accepted socket is wrapped so that a
//! [`ConnHandle`] (given to handlers as connect info) can abort it: the next read or write fails, hyper
//! drops the connection, and everything it held is freed.

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

/// A TCP stream that fails once its handle aborts it.
pub struct CuttableStream {
    inner: TcpStream,
    handle: ConnHandle,
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
        self.guarded(READ, cx, |s, cx| s.poll_read(cx, buf))
    }
}

impl AsyncWrite for CuttableStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.guarded(WRITE, cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
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

/// A TCP listener whose connections are [`CuttableStream`]s.
pub struct CuttableListener(pub TcpListener);

impl Listener for CuttableListener {
    type Io = CuttableStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let io = CuttableStream {
                        inner: stream,
                        handle: ConnHandle::default(),
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
        self.0.local_addr()
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
