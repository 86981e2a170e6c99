//! The request path's HTTP client: one HTTP/1.1 keep-alive connection per virtual user (or open-model
//! worker), driven through hyper's client connection directly — as wrk and oha do. Against a shared
//! pooled client this saves, per request, the URL parse, the pool checkout under a lock, the boxed
//! futures and the body collection; the request loop's own CPU is what the bench measures.
//!
//! A connection that the server closed while idle is noticed before the request is written (the
//! sender is not ready) and replaced; a request that fails on a connection used before is retried once
//! on a fresh one when it was never answered, as a pooled client does for idempotent retries.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

use crate::record::FailureKind;

/// What a request came to.
pub enum Answer {
    /// Status and body (the body only when asked for; otherwise empty).
    Answered(u16, Bytes),
    Failed(FailureKind, String),
}

/// Where requests go and the headers every one carries.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub host: HeaderValue,
    pub authorization: Option<HeaderValue>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

/// One user's connection; reconnects on demand.
#[derive(Default)]
pub struct Conn {
    sender: Option<SendRequest<Full<Bytes>>>,
    /// The current connection has carried a request (a failure on it may be a stale keep-alive).
    used: bool,
}

static JSON: HeaderValue = HeaderValue::from_static("application/json");

impl Conn {
    async fn connect(&mut self, ep: &Endpoint) -> Result<(), Answer> {
        let stream = match tokio::time::timeout(ep.connect_timeout, tokio::net::TcpStream::connect(ep.addr)).await {
            Err(_) => return Err(Answer::Failed(FailureKind::Timeout, "connect timed out".into())),
            Ok(Err(e)) => return Err(Answer::Failed(FailureKind::Connect, format!("connect: {e}"))),
            Ok(Ok(s)) => s,
        };
        let _ = stream.set_nodelay(true);
        let (sender, connection) = match http1::handshake(TokioIo::new(stream)).await {
            Ok(pair) => pair,
            Err(e) => return Err(Answer::Failed(FailureKind::Connect, format!("handshake: {e}"))),
        };
        tokio::spawn(async move {
            let _ = connection.await;
        });
        self.sender = Some(sender);
        self.used = false;
        Ok(())
    }

    fn request(
        ep: &Endpoint,
        method: &Method,
        path_and_query: &str,
        body: Option<&str>,
    ) -> Result<Request<Full<Bytes>>, Answer> {
        let mut builder = Request::builder().method(method.clone()).uri(path_and_query);
        let headers = builder.headers_mut().expect("a fresh builder");
        headers.insert(HOST, ep.host.clone());
        if let Some(auth) = &ep.authorization {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        let body = match body {
            Some(b) => {
                headers.insert(CONTENT_TYPE, JSON.clone());
                Full::new(Bytes::copy_from_slice(b.as_bytes()))
            }
            None => Full::new(Bytes::new()),
        };
        builder
            .body(body)
            .map_err(|e| Answer::Failed(FailureKind::Protocol, format!("building the request: {e}")))
    }

    /// Send one request and read the whole answer, within the endpoint's timeout.
    pub async fn send(
        &mut self,
        ep: &Endpoint,
        method: &Method,
        path_and_query: &str,
        body: Option<&str>,
        keep_body: bool,
    ) -> Answer {
        match tokio::time::timeout(ep.timeout, self.send_inner(ep, method, path_and_query, body, keep_body)).await {
            Ok(answer) => answer,
            Err(_) => {
                // The connection may still carry the late answer: never reuse it.
                self.sender = None;
                Answer::Failed(FailureKind::Timeout, "timed out".into())
            }
        }
    }

    async fn send_inner(
        &mut self,
        ep: &Endpoint,
        method: &Method,
        path_and_query: &str,
        body: Option<&str>,
        keep_body: bool,
    ) -> Answer {
        for attempt in 0..2 {
            let ready = match self.sender.as_mut() {
                Some(s) => s.ready().await.is_ok(),
                None => false,
            };
            if !ready && let Err(failed) = self.connect(ep).await {
                return failed;
            }
            let reused = self.used;
            self.used = true;
            let request = match Self::request(ep, method, path_and_query, body) {
                Ok(r) => r,
                Err(failed) => return failed,
            };
            let sender = self.sender.as_mut().expect("connected above");
            let response = match sender.send_request(request).await {
                Ok(r) => r,
                Err(e) => {
                    self.sender = None;
                    // A keep-alive connection the server closed as we wrote: once more on a new one.
                    if reused && attempt == 0 && (e.is_canceled() || e.is_incomplete_message() || e.is_closed()) {
                        continue;
                    }
                    return Answer::Failed(FailureKind::Protocol, crate::engine::exec::error_chain(&e));
                }
            };
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut kept: Option<Bytes> = None;
            let mut parts: Vec<Bytes> = Vec::new();
            loop {
                match body.frame().await {
                    None => break,
                    Some(Ok(frame)) => {
                        if keep_body && let Ok(data) = frame.into_data() {
                            match kept.take() {
                                None if parts.is_empty() => kept = Some(data),
                                first => {
                                    parts.extend(first);
                                    parts.push(data);
                                }
                            }
                        }
                    }
                    Some(Err(e)) => {
                        self.sender = None;
                        return Answer::Failed(FailureKind::Protocol, crate::engine::exec::error_chain(&e));
                    }
                }
            }
            let body = if parts.is_empty() {
                kept.unwrap_or_default()
            } else {
                Bytes::from(parts.concat())
            };
            return Answer::Answered(status, body);
        }
        Answer::Failed(FailureKind::Protocol, "connection closed".into())
    }
}
