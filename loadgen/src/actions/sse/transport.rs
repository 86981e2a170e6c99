//! The SSE action's HTTP underneath: our own small transport over hyper's HTTP/1 client connection,
//! one connection per stream, so the action owns its socket — it can set SO_LINGER 0 for a reset and
//! cut the connection task itself.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use futures_core::Stream;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use launchdarkly_sdk_transport::{ByteStream, HttpTransport, Request, ResponseFuture, TransportError};
use tokio::task::AbortHandle;

/// A transport that makes one HTTP/1 connection per request and remembers how to cut it.
#[derive(Clone)]
pub struct OwnedConnection {
    rst: bool,
    connect_timeout: Duration,
    conn: Arc<Mutex<Option<AbortHandle>>>,
}

impl OwnedConnection {
    pub fn new(rst: bool, connect_timeout: Duration) -> Self {
        OwnedConnection {
            rst,
            connect_timeout,
            conn: Arc::default(),
        }
    }

    /// Drop the connection now: FIN, or RST when SO_LINGER 0 was set.
    pub fn cut(&self) {
        if let Some(handle) = self.conn.lock().expect("conn lock").take() {
            handle.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String);

/// The connection could not be made (refused, unreachable, timed out): the target is unreachable,
/// told apart from a failure on a connection that was made by its type, not its message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectFailed(String);

impl ConnectFailed {
    pub fn is(e: &TransportError) -> bool {
        e.inner().downcast_ref::<ConnectFailed>().is_some()
    }
}

impl HttpTransport for OwnedConnection {
    fn request(&self, request: Request<Option<Bytes>>) -> ResponseFuture {
        let this = self.clone();
        let fut = async move {
            let uri = request.uri().clone();
            let host = uri
                .host()
                .ok_or_else(|| TransportError::new(Failure("no host in URL".into())))?;
            let port = uri.port_u16().unwrap_or(80);
            let stream = tokio::time::timeout(this.connect_timeout, tokio::net::TcpStream::connect((host, port)))
                .await
                .map_err(|_| TransportError::new(ConnectFailed("connect timed out".into())))?
                .map_err(|e| TransportError::new(ConnectFailed(e.to_string())))?;
            let _ = stream.set_nodelay(true);
            if this.rst {
                // Closing this socket then sends a reset instead of a FIN.
                stream.set_zero_linger().map_err(TransportError::new)?;
            }
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(TransportError::new)?;
            let task = tokio::spawn(async move {
                let _ = connection.await;
            });
            *this.conn.lock().expect("conn lock") = Some(task.abort_handle());
            // Origin-form request target and a Host header, as a client (not a proxy) sends them.
            let (mut parts, body) = request.into_parts();
            let authority = uri.authority().map(|a| a.as_str().to_owned()).unwrap_or_default();
            parts.uri = uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .parse()
                .map_err(TransportError::new)?;
            if let Ok(host) = hyper::header::HeaderValue::from_str(&authority) {
                parts.headers.entry(hyper::header::HOST).or_insert(host);
            }
            let request = hyper::Request::from_parts(parts, Full::new(body.unwrap_or_default()));
            let response = sender.send_request(request).await.map_err(TransportError::new)?;
            Ok(response.map(|body| {
                let frames = body.into_data_stream().map(|r| r.map_err(TransportError::new));
                Box::pin(SyncStream(Mutex::new(Box::pin(frames)))) as ByteStream
            }))
        };
        Box::pin(SyncFuture(Mutex::new(Box::pin(fut))))
    }
}

/// Makes a `Send` future `Sync` (the transport's contract asks for it) without a lock on the way:
/// it is only ever polled through `&mut`, so `Mutex::get_mut` suffices.
struct SyncFuture<F>(Mutex<Pin<Box<F>>>);

impl<F: Future + Send> Future for SyncFuture<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.0.get_mut().expect("never poisoned").as_mut().poll(cx)
    }
}

struct SyncStream<S>(Mutex<Pin<Box<S>>>);

impl<S: Stream + Send> Stream for SyncStream<S> {
    type Item = S::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.0.get_mut().expect("never poisoned").as_mut().poll_next(cx)
    }
}
