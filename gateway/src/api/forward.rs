//! A request for a session another replica holds, forwarded there. With a session bus
//! ([`crate::session::bus`]), a `POST /message?session_id=…` or a `POST`/`GET`/`DELETE /mcp` with an
//! `Mcp-Session-Id` this replica does not hold is sent, as it came (auth included), to the replica
//! that answers for the session on the bus, and its answer — a stream too — is relayed back. A
//! session no replica answers for goes to the local handler, which says 404 as before.
//!
//! The relay of a stream stops as soon as the client is gone (its body is dropped), closing the
//! connection to the owner: the owner sees the disconnect exactly as if the client had been its own.

use std::ops::ControlFlow;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::conn::{ConnHandle, Streaming};
use crate::session::FrameStream;

/// Marks a forwarded request, so it is never forwarded again.
const FORWARDED: HeaderName = HeaderName::from_static("x-stampede-forwarded");
const SESSION: HeaderName = HeaderName::from_static("mcp-session-id");
/// Chunks relayed ahead of a slow client.
const RELAY_CHUNKS: usize = 8;

pub async fn forward(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(bus) = state.bus.clone() else {
        return next.run(req).await;
    };
    let session = match session_named(&req) {
        Some(id) if !req.headers().contains_key(&FORWARDED) && !state.sessions.holds(&id) => id,
        _ => return next.run(req).await,
    };
    let Some(owner) = bus.owner(&session).await else {
        return next.run(req).await;
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    match relay(bus.http(), format!("{owner}{path}"), req, Hop::Replica).await {
        Ok(response) => {
            if response.status() == StatusCode::NOT_FOUND {
                bus.forget(&session);
            }
            response
        }
        Err(e) => {
            bus.forget(&session);
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("session {session} is held by {owner}, which could not be reached: {e}"),
            )
            .into_response()
        }
    }
}

/// The session a request names: `session_id` in the query of a `…/message` (decoded as the
/// handler's `Query` decodes it, so both mean the same session), the `Mcp-Session-Id` header of a
/// `…/mcp`.
fn session_named(req: &Request) -> Option<String> {
    let path = req.uri().path();
    if path.ends_with("/message") {
        #[derive(serde::Deserialize)]
        struct Named {
            session_id: String,
        }
        let Query(named) = Query::<Named>::try_from_uri(req.uri()).ok()?;
        Some(named.session_id)
    } else if path.ends_with("/mcp") {
        Some(req.headers().get(&SESSION)?.to_str().ok()?.to_owned())
    } else {
        None
    }
}

/// Who a relayed request goes to, which says what goes with it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Hop {
    /// Another replica of this gateway: the request as it came (auth included), marked forwarded.
    Replica,
    /// A federated MCP server: MCP's own headers only — never the client's credentials or Origin.
    Upstream,
}

impl Hop {
    fn keeps(self, name: &HeaderName) -> bool {
        match self {
            Hop::Replica => !hop_by_hop(name),
            Hop::Upstream => {
                [header::ACCEPT, header::CONTENT_TYPE].contains(name)
                    || name.as_str() == "last-event-id"
                    || name.as_str().starts_with("mcp-")
            }
        }
    }
}

/// Send `req` to `url` and relay the answer back as it comes (a stream too).
pub(super) async fn relay(http: &reqwest::Client, url: String, req: Request, hop: Hop) -> anyhow::Result<Response> {
    let (parts, body, streaming) = collect(req).await?;
    let upstream = send(http, url, &parts, body, hop).await?;
    relay_back(upstream, streaming, |bytes| {
        ControlFlow::Continue(bytes.unwrap_or_default())
    })
}

/// A request whole: its head, its body (read within the body limit) and its connection's handle.
pub(super) async fn collect(req: Request) -> anyhow::Result<(Parts, Bytes, Streaming)> {
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnHandle>>()
        .map(|ConnectInfo(conn)| conn.clone())
        .ok_or_else(|| anyhow::anyhow!("the connection's handle is missing"))?;
    let limit = req.extensions().get::<super::extract::BodyLimit>().copied();
    let (parts, body) = req.into_parts();
    let body = match limit {
        Some(l) => tokio::time::timeout(l.timeout, axum::body::to_bytes(body, l.max_bytes)).await??,
        None => axum::body::to_bytes(body, usize::MAX).await?,
    };
    // The relay may be a stream: its connection is not idle while it lasts. Marked once the body is
    // in, since a streaming connection may not be read (the legacy profile's `read_streams`).
    Ok((parts, body, conn.streaming()))
}

/// Send a request's head and body on to `url`, with the headers `hop` keeps.
pub(super) async fn send(
    http: &reqwest::Client,
    url: String,
    parts: &Parts,
    body: Bytes,
    hop: Hop,
) -> anyhow::Result<reqwest::Response> {
    let mut request = http.request(parts.method.clone(), url);
    for (name, value) in &parts.headers {
        if hop.keeps(name) {
            request = request.header(name, value);
        }
    }
    if hop == Hop::Replica {
        request = request.header(FORWARDED, "1");
    }
    Ok(request.body(body).send().await?)
}

/// The answer back to the client as it comes, each chunk through `each` (which may keep part of one
/// for the next; `None` when the answer has ended, for what it kept; `Break` with its last bytes to end
/// the relay), until the client is gone.
pub(super) fn relay_back(
    mut upstream: reqwest::Response,
    streaming: Streaming,
    mut each: impl FnMut(Option<Bytes>) -> ControlFlow<Bytes, Bytes> + Send + 'static,
) -> anyhow::Result<Response> {
    let mut response = Response::builder().status(upstream.status());
    for (name, value) in upstream.headers() {
        if !hop_by_hop(name) {
            response = response.header(name, value);
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(RELAY_CHUNKS);
    tokio::spawn(async move {
        loop {
            let chunk = tokio::select! {
                chunk = upstream.chunk() => chunk,
                () = tx.closed() => return,
            };
            let (bytes, ended) = match chunk.map(|c| (c.is_none(), each(c))) {
                Ok((ended, ControlFlow::Continue(bytes))) => (bytes, ended),
                Ok((_, ControlFlow::Break(bytes))) => (bytes, true),
                Err(_) => return,
            };
            if !bytes.is_empty() && tx.send(bytes).await.is_err() || ended {
                return;
            }
        }
    });
    Ok(response.body(Body::from_stream(FrameStream::new(rx, streaming)))?)
}

fn hop_by_hop(name: &HeaderName) -> bool {
    [
        header::CONNECTION,
        header::HOST,
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::TE,
        header::UPGRADE,
    ]
    .contains(name)
        || name.as_str() == "keep-alive"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(uri: &str) -> Option<String> {
        session_named(&Request::builder().uri(uri).body(axum::body::Body::empty()).unwrap())
    }

    #[test]
    fn a_percent_encoded_session_is_the_session_the_handler_finds() {
        assert_eq!(named("/message?session_id=%61bc").as_deref(), Some("abc"));
        assert_eq!(named("/servers/x/message?x=1&session_id=a%2Bb").as_deref(), Some("a+b"));
        assert_eq!(named("/message?other=1"), None);
        assert_eq!(named("/tools"), None);
    }
}
