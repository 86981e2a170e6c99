//! MCP's HTTP+SSE transport (protocol 2024-11-05): `GET /sse` opens the stream, whose first event
//! (`endpoint`) names where to post (`/message?session_id=…`); each posted message is accepted with
//! 202 and its answer sent on the stream as an `event: message`. A request before MCP's handshake
//! (`initialize`, then `notifications/initialized`; `ping` aside) is refused as the SDKs refuse it.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_core::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::peer::Outbox;
use super::{KEEPALIVE, Upstream, mcp};

/// Open a session: the endpoint event, then its answers, until the client leaves.
pub async fn open(State(up): State<Arc<Upstream>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (tx, rx) = mpsc::channel::<String>(64);
    let session = Session::open(up, tx);
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/message?session_id={}", session.id));
    let replies = futures_util::stream::unfold((rx, session), |(mut rx, session)| async move {
        let data = rx.recv().await?;
        Some((Ok(Event::default().event("message").data(data)), (rx, session)))
    });
    let stream = futures_util::StreamExt::chain(futures_util::stream::once(async { Ok(endpoint) }), replies);
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEPALIVE))
}

/// A session while its stream lives: registered and counted; dropped with the stream (the client has
/// gone), it is removed and no longer counted.
struct Session {
    up: Arc<Upstream>,
    id: String,
}

impl Session {
    fn open(up: Arc<Upstream>, tx: mpsc::Sender<String>) -> Session {
        let id = uuid::Uuid::new_v4().simple().to_string();
        up.http_sse
            .lock()
            .expect("sessions lock")
            .insert(id.clone(), (tx, Arc::default()));
        up.counters.sessions[0].fetch_add(1, Ordering::Relaxed);
        Session { up, id }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.up.http_sse.lock().expect("sessions lock").remove(&self.id);
        self.up.counters.sessions[0].fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Deserialize)]
pub struct SessionQuery {
    session_id: Option<String>,
}

fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"detail": message}))).into_response()
}

/// A message for a session: 202 at once, the answer on the session's stream.
pub async fn message(State(up): State<Arc<Upstream>>, Query(q): Query<SessionQuery>, body: Bytes) -> Response {
    let Some(id) = q.session_id else {
        return detail(StatusCode::BAD_REQUEST, "session_id is required");
    };
    let Some((tx, handshake)) = up.http_sse.lock().expect("sessions lock").get(&id).cloned() else {
        return detail(StatusCode::NOT_FOUND, "Could not find session");
    };
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return detail(StatusCode::BAD_REQUEST, &format!("Could not parse message: {e}")),
    };
    // Before MCP's handshake, a request is refused as the SDKs refuse it (a notification: dropped).
    let too_early = !handshake.admits(mcp::method(&msg).unwrap_or_default());
    // Whatever the request tells or asks the client before its answer goes on the stream too.
    tokio::spawn(async move {
        let out = Outbox(tx);
        let answer = if too_early {
            mcp::is_request(&msg).then(|| {
                json!({"jsonrpc": "2.0", "id": msg["id"], "error":
                    {"code": protocol::error::INVALID_PARAMS, "message": protocol::handshake::TOO_EARLY}})
            })
        } else {
            mcp::answer(&up, "sse", &msg, protocol::Era::Session, Some(&out)).await
        };
        if let Some(answer) = answer {
            out.send(&answer).await;
        }
    });
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
