//! The SSE action: open a stream with eventsource-client (reconnect off), wait for the endpoint event,
//! send JSON-RPC requests through the session's message endpoint and time the replies that arrive on
//! the stream, hold, then close — abruptly (the connection dropped at once, with a TCP reset when
//! `rst = true`) or gracefully (the stream released and the connection closed in order).
//!
//! The HTTP underneath is our own small transport over hyper's HTTP/1 client connection, so the
//! action owns its socket: it can set SO_LINGER 0 for a reset and cut the connection task itself.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use eventsource_client::{Client as _, ClientBuilder, ReconnectOptions, SSE};
use futures_core::Stream;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use launchdarkly_sdk_transport::{ByteStream, HttpTransport, Request, ResponseFuture, TransportError};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::Ctx;
use super::exec::{Ended, error_chain, render};
use crate::data::FailureKind;
use crate::record::{Outcome, Sample};
use crate::scenario::{CloseMode, DurRange, SseRequest, Template};
use crate::setup::PoolValues;

/// A transport that makes one HTTP/1 connection per request and remembers how to cut it.
#[derive(Clone)]
struct OwnedConnection {
    rst: bool,
    connect_timeout: Duration,
    conn: Arc<Mutex<Option<AbortHandle>>>,
}

impl OwnedConnection {
    fn new(rst: bool, connect_timeout: Duration) -> Self {
        OwnedConnection {
            rst,
            connect_timeout,
            conn: Arc::default(),
        }
    }

    /// Drop the connection now: FIN, or RST when SO_LINGER 0 was set.
    fn cut(&self) {
        if let Some(handle) = self.conn.lock().expect("conn lock").take() {
            handle.abort();
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failure(String);

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
                .map_err(|_| TransportError::new(Failure("connect timed out".into())))?
                .map_err(TransportError::new)?;
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

pub struct SseAction<'a> {
    pub path: &'a Template,
    pub requests: &'a [SseRequest],
    pub hold: DurRange,
    pub close: CloseMode,
    pub rst: bool,
    /// Recording slot of the stream (time to the endpoint event) and of the replies.
    pub slot: usize,
    pub reply_slot: Option<usize>,
}

/// Open, talk, hold, close. Records the connect sample and one sample per reply.
pub async fn run(
    ctx: &Ctx,
    a: &SseAction<'_>,
    values: &mut PoolValues<'_>,
    url: &mut String,
    intended: Instant,
) -> Ended {
    render(url, &ctx.base, a.path, values);
    let transport = OwnedConnection::new(a.rst, ctx.timeout.min(Duration::from_secs(10)));
    let mut builder = match ClientBuilder::for_url(url) {
        Ok(b) => b.reconnect(ReconnectOptions::reconnect(false).build()),
        Err(e) => return fail(ctx, a.slot, intended, FailureKind::Protocol, None, &e.to_string()),
    };
    if let Some(token) = &ctx.token {
        builder = match builder.header("Authorization", &format!("Bearer {token}")) {
            Ok(b) => b,
            Err(e) => return fail(ctx, a.slot, intended, FailureKind::Protocol, None, &e.to_string()),
        };
    }
    let client = builder.build_with_transport(transport.clone());
    let mut stream = client.stream();

    // 1. The endpoint event.
    let endpoint = match tokio::time::timeout(ctx.timeout, endpoint_event(&mut stream)).await {
        Err(_) => {
            return fail(
                ctx,
                a.slot,
                intended,
                FailureKind::Timeout,
                None,
                "no endpoint event in time",
            );
        }
        Ok(Err((kind, status, msg))) => {
            transport.cut();
            return fail(ctx, a.slot, intended, kind, status, &msg);
        }
        Ok(Ok(endpoint)) => endpoint,
    };
    ctx.recorder.record(
        a.slot,
        &Sample {
            latency: intended.elapsed(),
            outcome: Outcome::Ok,
            status: Some(200),
            rpc_error: None,
            error: None,
        },
    );
    let gauges = &ctx.recorder.gauges;
    gauges.sse_open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    gauges.sse_opened.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut server_closed = false;

    // 2. Requests through the session, replies timed on the stream.
    for (n, request) in a.requests.iter().enumerate() {
        let Some(reply_slot) = a.reply_slot else { break };
        let id = n as u64 + 1;
        let mut body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":{}"#,
            serde_json::Value::from(request.method.as_str())
        );
        if let Some(params) = &request.params {
            body.push_str(",\"params\":");
            params.render_into(&mut body, values);
        }
        body.push('}');
        let sent = Instant::now();
        let post = ctx
            .http
            .post(endpoint.as_str())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let (outcome, status, rpc_error, error) = match post {
            Err(e) => (
                Outcome::Failed(super::exec::classify_error(&e)),
                None,
                None,
                Some(error_chain(&e)),
            ),
            Ok(resp) if resp.status().as_u16() != 202 => (
                Outcome::Failed(FailureKind::Status),
                Some(resp.status().as_u16()),
                None,
                None,
            ),
            Ok(_) => match tokio::time::timeout(ctx.timeout, reply_event(&mut stream, id)).await {
                Err(_) => (
                    Outcome::Failed(FailureKind::Timeout),
                    Some(202),
                    None,
                    Some("no reply on the stream in time".into()),
                ),
                Ok(Err(msg)) => {
                    server_closed = true;
                    (Outcome::Failed(FailureKind::Protocol), Some(202), None, Some(msg))
                }
                Ok(Ok(Some(code))) => (Outcome::Failed(FailureKind::JsonRpc), Some(202), Some(code), None),
                Ok(Ok(None)) => (Outcome::Ok, Some(202), None, None),
            },
        };
        ctx.recorder.record(
            reply_slot,
            &Sample {
                latency: sent.elapsed(),
                outcome,
                status,
                rpc_error,
                error: error.as_deref(),
            },
        );
        if server_closed {
            break;
        }
    }

    // 3. Hold (the end of the load shortens it), 4. close.
    if !server_closed {
        let hold = a.hold.sample(&mut fastrand::Rng::new());
        let mut stop = ctx.soft_stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(hold) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    let counter = if server_closed {
        &gauges.sse_server_closed
    } else {
        match (a.close, a.rst) {
            (CloseMode::Abrupt, true) => &gauges.sse_closed_rst,
            (CloseMode::Abrupt, false) => &gauges.sse_closed_abrupt,
            (CloseMode::Graceful, _) => &gauges.sse_closed_graceful,
        }
    };
    match a.close {
        CloseMode::Abrupt => {
            transport.cut();
            drop(stream);
        }
        CloseMode::Graceful => {
            // Release the stream; hyper closes the connection in order.
            drop(stream);
            drop(client);
        }
    }
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    gauges.sse_open.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    Ended::Done(Outcome::Ok)
}

type EventStream<'a> = Pin<Box<dyn Stream<Item = eventsource_client::Result<SSE>> + Send + Sync + 'a>>;

/// Wait for `event: endpoint`; answer its URL, or the failure.
async fn endpoint_event(stream: &mut EventStream<'_>) -> Result<String, (FailureKind, Option<u16>, String)> {
    loop {
        match stream.next().await {
            None => {
                return Err((
                    FailureKind::Protocol,
                    None,
                    "stream ended before the endpoint event".into(),
                ));
            }
            Some(Err(eventsource_client::Error::UnexpectedResponse(resp, _))) => {
                let status = resp.status();
                return Err((FailureKind::Status, Some(status), format!("HTTP {status}")));
            }
            Some(Err(eventsource_client::Error::Transport(e))) => {
                let msg = error_chain(&e);
                let kind = if msg.contains("onnect") || msg.contains("refused") {
                    FailureKind::Connect
                } else {
                    FailureKind::Protocol
                };
                return Err((kind, None, msg));
            }
            Some(Err(e)) => return Err((FailureKind::Protocol, None, e.to_string())),
            Some(Ok(SSE::Event(ev))) if ev.event_type == "endpoint" => return Ok(ev.data),
            Some(Ok(_)) => {}
        }
    }
}

/// Wait for the `message` whose id is `id`; answer its JSON-RPC error code, if any.
async fn reply_event(stream: &mut EventStream<'_>, id: u64) -> Result<Option<i64>, String> {
    #[derive(serde::Deserialize)]
    struct Reply {
        id: serde_json::Value,
        #[serde(default)]
        error: Option<Code>,
    }
    #[derive(serde::Deserialize)]
    struct Code {
        code: i64,
    }
    loop {
        match stream.next().await {
            None => return Err("the server ended the stream".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(SSE::Event(ev))) if ev.event_type == "message" => {
                let reply: Reply = serde_json::from_str(&ev.data).map_err(|e| format!("bad message: {e}"))?;
                if reply.id == id {
                    return Ok(reply.error.map(|c| c.code));
                }
            }
            Some(Ok(SSE::Event(ev))) if ev.event_type == "shutdown" => return Err("the server is shutting down".into()),
            Some(Ok(_)) => {}
        }
    }
}

fn fail(ctx: &Ctx, slot: usize, intended: Instant, kind: FailureKind, status: Option<u16>, msg: &str) -> Ended {
    ctx.recorder.record(
        slot,
        &Sample {
            latency: intended.elapsed(),
            outcome: Outcome::Failed(kind),
            status,
            rpc_error: None,
            error: Some(msg),
        },
    );
    if kind == FailureKind::Connect {
        Ended::Unreachable
    } else {
        Ended::Done(Outcome::Failed(kind))
    }
}
