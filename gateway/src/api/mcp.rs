//! MCP's Streamable HTTP transport (2025-03-26) on `/mcp` and `/servers/{id}/mcp`, with the methods
//! of `/rpc`:
//! - `POST` carries one JSON-RPC message. `initialize` starts a session whose id comes back in
//!   `Mcp-Session-Id`; every later message must carry it (400 without it, 404 once the session is
//!   unknown or ended). A request is answered as `application/json`, or as a `text/event-stream`
//!   holding one `message` event — by `STREAMABLE_HTTP_REPLIES` when the client accepts both, else by
//!   what it accepts; notifications and responses get 202.
//! - `GET` opens the session's stream for server messages (keepalives here; one stream at a time,
//!   409 for a second); `DELETE` ends the session.
//! - No acceptable `Accept` → 406, a body that is not `application/json` → 415, an unsupported
//!   `MCP-Protocol-Version` → 400. Refusals are JSON-RPC errors with `id: null`, as the
//!   specification's reference servers send them.

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::extract::RawBody;
use crate::config::ReplyFormat;
use crate::conn::ConnHandle;
use crate::model::is_valid_id;
use crate::rpc::{self, Message};
use crate::session::{Entry, FrameStream, Refused, Registry, frame};

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
        (self.status, axum::Json(body)).into_response()
    }
}

fn rejected(status: StatusCode, code: i64, message: impl Into<String>) -> Rejection {
    Rejection {
        status,
        code,
        message: message.into(),
    }
}

/// The server-side error code the reference SDKs use for transport refusals.
const TRANSPORT_ERROR: i64 = -32000;

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What the client's `Accept` allows: (JSON, an event stream).
fn accepts(headers: &HeaderMap) -> (bool, bool) {
    let accept = header_str(headers, header::ACCEPT).unwrap_or("");
    let any = accept.contains("*/*");
    (
        any || accept.contains("application/json"),
        any || accept.contains("text/event-stream"),
    )
}

/// The session a request names, checked against the endpoint it came by.
fn session(state: &AppState, headers: &HeaderMap, server: Option<&str>) -> Result<(String, Entry), Rejection> {
    let Some(id) = header_str(headers, SESSION) else {
        return Err(rejected(
            StatusCode::BAD_REQUEST,
            TRANSPORT_ERROR,
            "Bad Request: Mcp-Session-Id header is required",
        ));
    };
    match state.sessions.lookup(id) {
        Some(entry) if entry.streamable.is_some() && entry.server_id.as_deref() == server => Ok((id.to_owned(), entry)),
        _ => Err(rejected(StatusCode::NOT_FOUND, -32001, "Session not found")),
    }
}

fn version_ok(headers: &HeaderMap) -> Result<(), Rejection> {
    match header_str(headers, VERSION) {
        Some(v) if !rpc::VERSIONS.contains(&v) => Err(rejected(
            StatusCode::BAD_REQUEST,
            TRANSPORT_ERROR,
            format!("Bad Request: unsupported MCP-Protocol-Version {v:?}"),
        )),
        _ => Ok(()),
    }
}

/// A server endpoint's server must exist (404 otherwise).
async fn server_exists(state: &AppState, server: &str) -> Result<(), Rejection> {
    let exists = is_valid_id(server) && state.store.server_exists(server).await.unwrap_or(false);
    if exists {
        Ok(())
    } else {
        Err(rejected(
            StatusCode::NOT_FOUND,
            TRANSPORT_ERROR,
            format!("Server not found: {server}"),
        ))
    }
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> Response {
    handle_post(&state, None, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn post_server(
    State(state): State<AppState>,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Response {
    let answered = match server_exists(&state, &server).await {
        Ok(()) => handle_post(&state, Some(server), &headers, body).await,
        Err(rejection) => Err(rejection),
    };
    answered.unwrap_or_else(IntoResponse::into_response)
}

async fn handle_post(
    state: &AppState,
    server: Option<String>,
    headers: &HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, Rejection> {
    let (json_ok, stream_ok) = accepts(headers);
    if !json_ok && !stream_ok {
        return Err(rejected(
            StatusCode::NOT_ACCEPTABLE,
            TRANSPORT_ERROR,
            "Not Acceptable: Accept must include application/json and text/event-stream",
        ));
    }
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(rejected(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TRANSPORT_ERROR,
            "Unsupported Media Type: Content-Type must be application/json",
        ));
    }
    let message = match rpc::parse_message(&body) {
        Ok(m) => m,
        Err(answer) => return Ok(json_answer(StatusCode::BAD_REQUEST, answer)),
    };
    let as_stream = stream_ok && (!json_ok || state.streamable_replies == ReplyFormat::Sse);
    let request = match message {
        Message::Request(r) if r.method == "initialize" => return Ok(initialize(state, server, r, as_stream).await),
        Message::Request(r) => Some(r),
        Message::Response => None,
    };
    let (_, entry) = session(state, headers, server.as_deref())?;
    version_ok(headers)?;
    let control = entry.streamable.as_ref().expect("a Streamable HTTP session");
    let _running = control.begin();
    // A notification or a response is taken with nothing to answer.
    let answer = match request {
        Some(r) => state.rpc.dispatch(r, entry.server_id.as_deref()).await,
        None => None,
    };
    let Some(answer) = answer else {
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    Ok(answer_as(as_stream, answer))
}

/// Start a session: answer `initialize` and, when it succeeded, name the new session.
async fn initialize(state: &AppState, server: Option<String>, request: rpc::Request, as_stream: bool) -> Response {
    let has_id = request.id.is_some();
    let answer = state.rpc.dispatch(request, server.as_deref()).await;
    let Some(answer) = answer.filter(|_| has_id) else {
        return rejected(
            StatusCode::BAD_REQUEST,
            rpc::INVALID_REQUEST,
            "Invalid Request: initialize must be a request with an id",
        )
        .into_response();
    };
    let (id, session) = state.sessions.open_streamable(server);
    tokio::spawn(session.run());
    let mut response = answer_as(as_stream, answer);
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(SESSION, v);
    }
    response
}

/// One answer, as JSON or as an event stream of one `message` event.
fn answer_as(as_stream: bool, answer: Vec<u8>) -> Response {
    if as_stream {
        (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            frame::event("message", &answer),
        )
            .into_response()
    } else {
        json_answer(StatusCode::OK, answer)
    }
}

fn json_answer(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    headers: HeaderMap,
) -> Response {
    open_stream(&state, None, &headers, conn)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn get_server(
    State(state): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    open_stream(&state, Some(server), &headers, conn)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `GET`: the session's stream for server messages.
async fn open_stream(
    state: &AppState,
    server: Option<String>,
    headers: &HeaderMap,
    conn: ConnHandle,
) -> Result<Response, Rejection> {
    if !accepts(headers).1 {
        return Err(rejected(
            StatusCode::NOT_ACCEPTABLE,
            TRANSPORT_ERROR,
            "Not Acceptable: Accept must include text/event-stream",
        ));
    }
    let (_, entry) = session(state, headers, server.as_deref())?;
    version_ok(headers)?;
    let control = entry.streamable.as_ref().expect("a Streamable HTTP session");
    let (out, frames) = Registry::stream_channel();
    let streaming = conn.streaming();
    match control.attach(out, conn).await {
        Ok(()) => {}
        Err(Refused::Streaming) => {
            return Err(rejected(
                StatusCode::CONFLICT,
                TRANSPORT_ERROR,
                "Conflict: this session already has an open stream",
            ));
        }
        Err(Refused::Ended) => return Err(rejected(StatusCode::NOT_FOUND, -32001, "Session not found")),
    }
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(FrameStream::new(frames, streaming)),
    )
        .into_response())
}

pub async fn delete(State(state): State<AppState>, headers: HeaderMap) -> Response {
    end_session(&state, None, &headers)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn delete_server(State(state): State<AppState>, Path(server): Path<String>, headers: HeaderMap) -> Response {
    end_session(&state, Some(server), &headers)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `DELETE`: the client ends its session.
async fn end_session(state: &AppState, server: Option<String>, headers: &HeaderMap) -> Result<Response, Rejection> {
    let (_, entry) = session(state, headers, server.as_deref())?;
    let control = entry.streamable.as_ref().expect("a Streamable HTTP session");
    match control.delete().await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(_) => Err(rejected(StatusCode::NOT_FOUND, -32001, "Session not found")),
    }
}
