//! MCP's Streamable HTTP transport (2025-03-26, 2025-06-18), as the specification words it:
//! - `POST /mcp` carries one JSON-RPC message (or, before 2025-06-18, a batch). Requests are answered
//!   with `application/json`, or as an SSE stream (`text/event-stream`) when the client accepts only
//!   that, or accepts both and the server is set to stream; notifications and responses get 202.
//! - `initialize` starts a session: its answer carries `Mcp-Session-Id`, which every later request
//!   must send (400 without it, 404 once it is unknown or ended). `MCP-Protocol-Version`, when sent,
//!   must be a version spoken here (400 otherwise).
//! - `GET /mcp` opens the session's stream for server messages (this server sends none but
//!   keepalives); `DELETE /mcp` ends the session.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{KEEPALIVE, Upstream, mcp};

const SESSION: &str = "mcp-session-id";
const VERSION: &str = "mcp-protocol-version";

/// The transport refusing a request: a JSON-RPC error with no request id, under an HTTP status.
struct Rejection {
    status: StatusCode,
    code: i64,
    message: String,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = json!({"jsonrpc": "2.0", "id": null, "error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

fn rejected(status: StatusCode, code: i64, message: &str) -> Rejection {
    Rejection {
        status,
        code,
        message: message.to_owned(),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The session a request names: `Err` is the answer when it names none or an unknown one.
fn session(up: &Upstream, headers: &HeaderMap) -> Result<String, Rejection> {
    let Some(id) = header_str(headers, SESSION) else {
        return Err(rejected(
            StatusCode::BAD_REQUEST,
            -32000,
            "Bad Request: Mcp-Session-Id header is required",
        ));
    };
    if !up.streamable.lock().expect("sessions lock").contains_key(id) {
        return Err(rejected(StatusCode::NOT_FOUND, -32001, "Session not found"));
    }
    Ok(id.to_owned())
}

fn version_ok(headers: &HeaderMap) -> Result<(), Rejection> {
    match header_str(headers, VERSION) {
        Some(v) if !mcp::VERSIONS.contains(&v) => Err(rejected(
            StatusCode::BAD_REQUEST,
            -32000,
            &format!("Bad Request: unsupported MCP-Protocol-Version {v:?}"),
        )),
        _ => Ok(()),
    }
}

/// Whether to answer as a stream: the client accepts only that, or both and the server prefers it.
fn as_stream(up: &Upstream, headers: &HeaderMap) -> bool {
    let accept = header_str(headers, header::ACCEPT.as_str()).unwrap_or("");
    let sse = accept.contains("text/event-stream");
    let json = accept.contains("application/json") || accept.contains("*/*") || accept.is_empty();
    sse && (!json || up.knobs.sse_replies)
}

pub async fn post(State(up): State<Arc<Upstream>>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return rejected(StatusCode::BAD_REQUEST, -32700, &format!("Parse error: {e}")).into_response(),
    };
    let (messages, batch) = match parsed {
        Value::Array(items) if !items.is_empty() => (items, true),
        Value::Array(_) => {
            return rejected(StatusCode::BAD_REQUEST, -32600, "Invalid Request: empty batch").into_response();
        }
        one => (vec![one], false),
    };
    let initialize = messages.iter().find(|m| mcp::method(m) == Some("initialize"));
    let new_session = match initialize {
        Some(_) if batch && messages.len() > 1 => {
            return rejected(
                StatusCode::BAD_REQUEST,
                -32600,
                "Invalid Request: initialize must be sent alone",
            )
            .into_response();
        }
        Some(init) => Some(mcp::negotiate(init["params"]["protocolVersion"].as_str())),
        None => {
            if let Err(rejection) = session(&up, &headers).and_then(|_| version_ok(&headers)) {
                return rejection.into_response();
            }
            None
        }
    };
    let has_requests = messages.iter().any(mcp::is_request);
    if !has_requests {
        for m in &messages {
            let _ = mcp::answer(&up, "streamable_http", m).await;
        }
        return StatusCode::ACCEPTED.into_response();
    }
    let stream = as_stream(&up, &headers);
    let mut answers = Vec::with_capacity(messages.len());
    for m in &messages {
        if let Some(a) = mcp::answer(&up, "streamable_http", m).await {
            answers.push(a);
        }
    }
    // A session starts with a successful initialize: its answer carries the id.
    let session = new_session
        .filter(|_| answers.iter().any(|a| a.get("result").is_some()))
        .map(|version| {
            let id = uuid::Uuid::new_v4().simple().to_string();
            up.streamable
                .lock()
                .expect("sessions lock")
                .insert(id.clone(), version.to_owned());
            up.counters.sessions[1].fetch_add(1, Ordering::Relaxed);
            id
        });
    let body = if batch {
        Value::Array(answers)
    } else {
        answers.pop().unwrap_or(Value::Null)
    };
    let mut response = if stream {
        let event = Event::default().event("message").data(body.to_string());
        let events = futures_util::stream::once(async move { Ok::<_, Infallible>(event) });
        Sse::new(events).into_response()
    } else {
        Json(body).into_response()
    };
    if let Some(id) = session
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        response.headers_mut().insert(SESSION, v);
    }
    response
}

/// The session's stream for server-initiated messages: keepalives only, until the client leaves or
/// the session ends.
pub async fn get(State(up): State<Arc<Upstream>>, headers: HeaderMap) -> Response {
    let id = match session(&up, &headers) {
        Ok(id) => id,
        Err(rejection) => return rejection.into_response(),
    };
    let accept = header_str(&headers, header::ACCEPT.as_str()).unwrap_or("");
    if !accept.contains("text/event-stream") {
        return rejected(
            StatusCode::NOT_ACCEPTABLE,
            -32000,
            "Not Acceptable: the stream is text/event-stream",
        )
        .into_response();
    }
    // Ends when the session does (checked at each keepalive).
    let events = futures_util::stream::unfold((up, id), |(up, id)| async move {
        tokio::time::sleep(KEEPALIVE).await;
        let alive = up.streamable.lock().expect("sessions lock").contains_key(&id);
        alive.then(|| (Ok::<_, Infallible>(Event::default().comment("keepalive")), (up, id)))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEPALIVE))
        .into_response()
}

/// End a session.
pub async fn delete(State(up): State<Arc<Upstream>>, headers: HeaderMap) -> Response {
    let id = match session(&up, &headers) {
        Ok(id) => id,
        Err(rejection) => return rejection.into_response(),
    };
    if up.streamable.lock().expect("sessions lock").remove(&id).is_some() {
        up.counters.sessions[1].fetch_sub(1, Ordering::Relaxed);
    }
    StatusCode::OK.into_response()
}
