//! MCP's Streamable HTTP transport in both eras, told apart by a POST's `MCP-Protocol-Version`
//! (`protocol::Era::of_post`), as the specification words them:
//! - `POST /mcp` carries one JSON-RPC message (or, in the session era before 2025-06-18, a batch).
//!   Requests are answered with `application/json`, or as an SSE stream (`text/event-stream`) when
//!   the client accepts only that, or accepts both and the server is set to stream; notifications and
//!   responses get 202.
//! - Session era: `initialize` starts a session whose answer carries `Mcp-Session-Id`, which every
//!   later request must send (400 without it, 404 once it is unknown or ended). `GET /mcp` opens the
//!   session's stream for server messages (this server sends none but keepalives); `DELETE /mcp`
//!   ends the session.
//! - Stateless era (2026-07-28): each request stands alone, its envelope and routing headers checked
//!   (`protocol::envelope`); `server/discover` is the handshake; no `GET`, no `DELETE` (405). A
//!   `subscriptions/listen` is answered with its stream: the acknowledgement, then keepalives (and,
//!   with `--list-changed-every`, change notifications of the kinds asked for) until the client
//!   closes it.

use std::convert::Infallible;

use futures_util::StreamExt as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use protocol::error::{INVALID_REQUEST, http_status};
use protocol::{Era, Rejection, envelope};
use serde_json::Value;

use super::peer::Outbox;
use super::{KEEPALIVE, Upstream, mcp};

const SESSION: &str = protocol::header::SESSION_ID;
const VERSION: &str = protocol::header::PROTOCOL_VERSION;

fn rejected(status: StatusCode, code: i64, message: &str) -> Rejection {
    Rejection::new(code, message).with_status(status)
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
    if Era::of_post(header_str(&headers, VERSION)) == Era::Stateless {
        return stateless(&up, &headers, parsed)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    let (mut messages, batch) = match parsed {
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
        Some(init) => Some(protocol::Version::negotiate(init["params"]["protocolVersion"].as_str()).as_str()),
        None => {
            if let Err(rejection) = session(&up, &headers) {
                return rejection.into_response();
            }
            None
        }
    };
    let has_requests = messages.iter().any(mcp::is_request);
    if !has_requests {
        for m in &messages {
            let _ = mcp::answer(&up, "streamable_http", m, Era::Session, None).await;
        }
        return StatusCode::ACCEPTED.into_response();
    }
    if let [one] = messages.as_slice()
        && accepts_stream(&headers)
        && converses(&up, one)
    {
        return conversation(up, messages.swap_remove(0), Era::Session);
    }
    let stream = as_stream(&up, &headers);
    let mut answers = Vec::with_capacity(messages.len());
    for m in &messages {
        if let Some(a) = mcp::answer(&up, "streamable_http", m, Era::Session, None).await {
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
    let mut response = reply(stream, &body);
    if let Some(id) = session
        && let Ok(v) = HeaderValue::from_str(&id)
    {
        response.headers_mut().insert(SESSION, v);
    }
    response
}

fn accepts_stream(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT.as_str()).is_some_and(|a| a.contains("text/event-stream"))
}

/// A call of a fixture tool that messages the client while it runs.
fn converses(up: &Upstream, msg: &Value) -> bool {
    up.knobs.conformance
        && mcp::method(msg) == Some("tools/call")
        && msg["params"]["name"].as_str().is_some_and(super::fixtures::converses)
}

/// A request answered on a stream of its own: what it tells and asks the client, then its answer.
fn conversation(up: Arc<Upstream>, msg: Value, era: Era) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(16);
    tokio::spawn(async move {
        let out = Outbox(tx);
        if let Some(answer) = mcp::answer(&up, "streamable_http", &msg, era, Some(&out)).await {
            out.send(&answer).await;
        }
    });
    // Ends when the task drops its sender, after the answer.
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        let data = rx.recv().await?;
        Some((Ok::<_, Infallible>(Event::default().event("message").data(data)), rx))
    });
    Sse::new(events).into_response()
}

/// One answer, as JSON or as an SSE stream of one `message` event.
fn reply(stream: bool, body: &Value) -> Response {
    if stream {
        let event = Event::default().event("message").data(body.to_string());
        let events = futures_util::stream::once(async move { Ok::<_, Infallible>(event) });
        Sse::new(events).into_response()
    } else {
        Json(body).into_response()
    }
}

/// A stateless-era POST: one request, its envelope checked, answered in the era's form.
async fn stateless(up: &Arc<Upstream>, headers: &HeaderMap, message: Value) -> Result<Response, Rejection> {
    let is_message = message.is_object() && mcp::method(&message).is_some();
    if !is_message {
        return Err(Rejection::new(
            INVALID_REQUEST,
            "Invalid Request: the body must be one JSON-RPC request or notification",
        ));
    }
    if !mcp::is_request(&message) {
        // No client notifications in this era; one sent anyway is acknowledged and dropped.
        envelope::supported(header_str(headers, VERSION).unwrap_or_default())?;
        return Ok(StatusCode::ACCEPTED.into_response());
    }
    let method = mcp::method(&message).unwrap_or_default();
    let params = &message["params"];
    envelope::check(method, envelope::Meta::of(params).as_ref(), params, headers)
        .map_err(|r| r.for_request(message.get("id")))?;
    if up.knobs.conformance
        && method == "tools/call"
        && let Some(schema) = super::fixtures::header_schema(message["params"]["name"].as_str().unwrap_or_default())
    {
        envelope::check_params(&schema, &message["params"]["arguments"], headers)
            .map_err(|r| r.for_request(message.get("id")))?;
    }
    if method == "subscriptions/listen" {
        up.counters.request("streamable_http", method);
        return Ok(listen(&message, up.knobs.list_changed_every));
    }
    // What the request is told before its answer (log messages, progress) goes on its stream; this
    // era's stream carries no request of the server's.
    if accepts_stream(headers)
        && converses(up, &message)
        && super::fixtures::only_tells(message["params"]["name"].as_str().unwrap_or_default())
    {
        return Ok(conversation(Arc::clone(up), message, Era::Stateless));
    }
    let answer = mcp::answer(up, "streamable_http", &message, Era::Stateless, None)
        .await
        .expect("a request is answered");
    let status = answer["error"]["code"].as_i64().map_or(StatusCode::OK, http_status);
    let mut response = reply(as_stream(up, headers) && status == StatusCode::OK, &answer);
    *response.status_mut() = status;
    Ok(response)
}

/// A listen stream: the acknowledgement of what was asked for, then keepalives; with `every`, a
/// change notification of each kind asked for at that pace.
fn listen(request: &Value, every: Option<std::time::Duration>) -> Response {
    let asked = request["params"]["notifications"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let honored: serde_json::Map<String, Value> = asked
        .into_iter()
        .filter(|(flag, on)| on == &Value::Bool(true) && flag.ends_with("ListChanged"))
        .collect();
    let tag = serde_json::json!({protocol::envelope::SUBSCRIPTION_ID_KEY: request["id"]});
    // What each opted-in kind of change is told with, tagged with the subscription.
    let changes: Vec<String> = honored
        .keys()
        .filter_map(|flag| match flag.as_str() {
            "toolsListChanged" => Some("notifications/tools/list_changed"),
            "promptsListChanged" => Some("notifications/prompts/list_changed"),
            "resourcesListChanged" => Some("notifications/resources/list_changed"),
            _ => None,
        })
        .map(|method| serde_json::json!({"jsonrpc": "2.0", "method": method, "params": {"_meta": tag}}).to_string())
        .collect();
    let ack = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
        "params": {"_meta": tag, "notifications": honored}});
    let first = Event::default().event("message").data(ack.to_string());
    let changed = match every {
        Some(every) if !changes.is_empty() => futures_util::stream::unfold(changes, move |changes| async move {
            tokio::time::sleep(every).await;
            let events: Vec<_> = changes
                .iter()
                .map(|c| Ok::<_, Infallible>(Event::default().event("message").data(c.as_str())))
                .collect();
            Some((futures_util::stream::iter(events), changes))
        })
        .flatten()
        .boxed(),
        _ => futures_util::stream::pending().boxed(),
    };
    let events = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, Infallible>(first) }),
        changed,
    );
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEPALIVE))
        .into_response()
}

/// The stateless era has no stream and no `DELETE`: a request naming its version is told so.
fn stateless_refusal(headers: &HeaderMap) -> Option<Response> {
    (Era::of_post(header_str(headers, VERSION)) == Era::Stateless)
        .then(|| (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response())
}

/// The session's stream for server-initiated messages: keepalives only, until the client leaves or
/// the session ends.
pub async fn get(State(up): State<Arc<Upstream>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = stateless_refusal(&headers) {
        return refusal;
    }
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
    if let Some(refusal) = stateless_refusal(&headers) {
        return refusal;
    }
    let id = match session(&up, &headers) {
        Ok(id) => id,
        Err(rejection) => return rejection.into_response(),
    };
    if up.streamable.lock().expect("sessions lock").remove(&id).is_some() {
        up.counters.sessions[1].fetch_sub(1, Ordering::Relaxed);
    }
    StatusCode::OK.into_response()
}
