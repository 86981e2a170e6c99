//! MCP's Streamable HTTP transport on `/mcp` and `/servers/{id}/mcp`, in both eras on one endpoint,
//! told apart by a POST's `MCP-Protocol-Version` header (`protocol::Era::of_post`): the session era
//! (`session.rs`) and the stateless era of 2026-07-28 (`stateless.rs`).
//!
//! What both share: no acceptable `Accept` → 406, a body that is not `application/json` → 415, a
//! malformed body → 400 with its JSON-RPC error. A request is answered as `application/json`, or as
//! a `text/event-stream` holding one `message` event — by `STREAMABLE_HTTP_REPLIES` when the client
//! accepts both, else by what it accepts.

mod session;
mod stateless;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::{Era, Rejection};

use super::AppState;
use super::extract::RawBody;
use crate::auth::Subject;
use crate::config::ReplyFormat;
use crate::conn::ConnHandle;
use crate::model::is_valid_id;
use crate::rpc;
use crate::session::frame;
pub use session::{delete, delete_server, get, get_server};

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

/// A server endpoint's server must exist (404 otherwise).
async fn server_exists(state: &AppState, server: &str) -> Result<(), Rejection> {
    let exists = is_valid_id(server) && state.store.server_exists(server).await.unwrap_or(false);
    if exists {
        Ok(())
    } else {
        Err(Rejection::transport(
            StatusCode::NOT_FOUND,
            format!("Server not found: {server}"),
        ))
    }
}

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    owner: Subject,
    headers: HeaderMap,
    body: RawBody,
) -> Response {
    handle_post(&state, owner, None, conn, &headers, body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn post_server(
    State(state): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    owner: Subject,
    Path(server): Path<String>,
    headers: HeaderMap,
    body: RawBody,
) -> Response {
    let answered = match server_exists(&state, &server).await {
        Ok(()) => handle_post(&state, owner, Some(server), conn, &headers, body).await,
        Err(rejection) => Err(rejection),
    };
    answered.unwrap_or_else(IntoResponse::into_response)
}

async fn handle_post(
    state: &AppState,
    owner: Subject,
    server: Option<String>,
    conn: ConnHandle,
    headers: &HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, Rejection> {
    let (json_ok, stream_ok) = accepts(headers);
    if !json_ok && !stream_ok {
        return Err(Rejection::transport(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must include application/json and text/event-stream",
        ));
    }
    let content_type = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
    if !content_type.starts_with("application/json") {
        return Err(Rejection::transport(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type: Content-Type must be application/json",
        ));
    }
    let message = match rpc::parse_message(&body) {
        Ok(m) => m,
        Err(answer) => return Ok(json_answer(StatusCode::BAD_REQUEST, answer)),
    };
    let as_stream = stream_ok && (!json_ok || state.streamable_replies == ReplyFormat::Sse);
    match Era::of_post(header_str(headers, protocol::header::PROTOCOL_VERSION)) {
        Era::Session => session::post(state, owner, server, headers, message, as_stream).await,
        Era::Stateless => stateless::post(state, owner, server, conn, headers, message, (json_ok, stream_ok)).await,
    }
}

/// One answer, as JSON or as an event stream of one `message` event.
fn answer_as(as_stream: bool, status: StatusCode, answer: Vec<u8>) -> Response {
    if as_stream {
        (
            status,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            frame::event("message", &answer),
        )
            .into_response()
    } else {
        json_answer(status, answer)
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

/// A session refused at a cap: its status (503 or 429) and why, as a JSON-RPC error.
fn full(full: crate::session::Full) -> Rejection {
    Rejection::transport(full.status(), full.message())
}
