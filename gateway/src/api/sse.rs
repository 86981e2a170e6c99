//! MCP's HTTP+SSE transport (2024-11-05): the streams (`GET /sse`, `GET /servers/{id}/sse`) and their
//! message endpoints (`POST /message`, `POST /servers/{id}/message`). The sessions themselves are in
//! `session`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::extract::{QueryParams, RawBody};
use crate::auth::Subject;
use crate::conn::ConnHandle;
use crate::model::is_valid_id;
use crate::rpc;
use crate::session::{FrameStream, Full, frame};

pub async fn open_sse(
    State(state): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    owner: Subject,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    open(&state, owner, None, &headers, conn)
}

pub async fn open_server_sse(
    State(state): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    owner: Subject,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !is_valid_id(&id) || !state.store.server_exists(&id).await? {
        return Err(ApiError::not_found(format!("Server not found: {id}")));
    }
    open(&state, owner, Some(id), &headers, conn)
}

impl From<Full> for ApiError {
    fn from(full: Full) -> ApiError {
        ApiError::new(full.status(), full.message())
    }
}

/// Register a session, spawn its producer, answer the stream.
fn open(
    state: &AppState,
    Subject(owner): Subject,
    server_id: Option<String>,
    headers: &HeaderMap,
    conn: ConnHandle,
) -> Result<Response, ApiError> {
    // The endpoint is absolute, on the host the client used, with the scheme it used: a proxy that
    // ends TLS in front says so (`X-Forwarded-Proto: https`), or the client would post in plain http
    // to a TLS port.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or(&state.local_host);
    let scheme = match headers.get("x-forwarded-proto").map(HeaderValue::as_bytes) {
        Some(b"https") => "https",
        _ => "http",
    };
    let streaming = conn.streaming();
    let (id, session, frames) = state.sessions.open(owner, server_id.clone(), conn)?;
    let endpoint = match &server_id {
        Some(server) => format!("{scheme}://{host}/servers/{server}/message?session_id={id}"),
        None => format!("{scheme}://{host}/message?session_id={id}"),
    };
    tokio::spawn(session.run(frame::event("endpoint", endpoint.as_bytes())));
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("x-mcp-sse"),
                HeaderValue::from_static("true"),
            ),
        ],
        Body::from_stream(FrameStream::new(frames, streaming)),
    )
        .into_response())
}

/// How long a reply waits for room in its session's inbox.
const REPLY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct MessageParams {
    /// The session named in the stream's `endpoint` event (absent: 400, rather than a generic 422).
    #[schemars(required)]
    session_id: Option<String>,
}

/// `POST /message?session_id=…` (and the server's): 202 at once; the reply goes out on the stream.
pub async fn post_message(
    State(state): State<AppState>,
    Subject(owner): Subject,
    QueryParams(params): QueryParams<MessageParams>,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let id = params
        .session_id
        .ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "session_id is required"))?;
    // Only an HTTP+SSE session has an inbox; the other transports' ids are not this endpoint's.
    let (session, inbox) = state
        .sessions
        .lookup(&id, &owner)
        .and_then(|s| s.inbox.clone().map(|inbox| (s, inbox)))
        .ok_or_else(|| ApiError::not_found(format!("Session not found: {id}")))?;
    // A message is answered by a task of its own: bounded per session and in all, so a client that
    // posts faster than its stream drains cannot pile them up.
    let in_session = session
        .messages
        .clone()
        .map(|m| m.try_acquire_owned())
        .transpose()
        .map_err(|_| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "session {id} has {} messages being answered: wait for their replies",
                    crate::session::MESSAGES_IN_FLIGHT
                ),
            )
        })?;
    let in_all = Arc::clone(&state.messages).try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the gateway is answering its maximum of messages (MAX_MESSAGES_IN_FLIGHT): try again later",
        )
    })?;
    let request = rpc::parse(&body)
        .map_err(|answer| ApiError::new(StatusCode::BAD_REQUEST, String::from_utf8_lossy(&answer).into_owned()))?;
    // Before MCP's handshake, a request is refused as the SDKs refuse it (a notification: dropped).
    let too_early = session.handshake.as_ref().is_some_and(|h| !h.admits(&request.method));
    let rpc = state.rpc.clone();
    tokio::spawn(async move {
        let _permits = (in_session, in_all);
        let answer = match (too_early, &request.id) {
            (true, Some(id)) => Some(rpc::failure(
                id,
                protocol::error::INVALID_PARAMS,
                protocol::handshake::TOO_EARLY,
            )),
            (true, None) => None,
            (false, _) => rpc.dispatch(request, session.server_id.as_deref()).await,
        };
        if let Some(answer) = answer {
            // Waits while the session is backed up, fails once it has ended, and gives up after a
            // while: a session that never drains its inbox (the legacy spin) must not pile up tasks.
            let _ = tokio::time::timeout(REPLY_WAIT, inbox.send(frame::event("message", &answer))).await;
        }
    });
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "success"}))).into_response())
}

pub async fn post_server_message(
    state: State<AppState>,
    owner: Subject,
    Path(_server): Path<String>,
    params: QueryParams<MessageParams>,
    body: RawBody,
) -> Result<Response, ApiError> {
    post_message(state, owner, params, body).await
}
