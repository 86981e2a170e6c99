//! The session era on `/mcp` (2024-11-05 to 2025-11-25, Streamable HTTP): `initialize` starts a
//! session whose id comes back in `Mcp-Session-Id`; every later message must carry it (400 without
//! it, 404 once the session is unknown or ended). `GET` opens the session's stream for server
//! messages (keepalives here; one stream at a time, 409 for a second); `DELETE` ends the session.
//! Notifications and responses get 202.

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::Rejection;
use protocol::error::SESSION_NOT_FOUND;

use super::stateless::refuse_other_methods;
use super::{accepts, answer_as, header_str};
use crate::api::AppState;
use crate::auth::Subject;
use crate::conn::ConnHandle;
use crate::rpc::{self, Message};
use crate::session::{Entry, FrameStream, Refused, Registry};

const SESSION: &str = protocol::header::SESSION_ID;

/// The session a request names, checked against the endpoint it came by and the token's subject.
fn session(
    state: &AppState,
    owner: &Subject,
    headers: &HeaderMap,
    server: Option<&str>,
) -> Result<(String, Entry), Rejection> {
    let Some(id) = header_str(headers, SESSION) else {
        return Err(Rejection::transport(
            StatusCode::BAD_REQUEST,
            "Bad Request: Mcp-Session-Id header is required",
        ));
    };
    match state.sessions.lookup(id, &owner.0) {
        Some(entry) if entry.streamable.is_some() && entry.server_id.as_deref() == server => Ok((id.to_owned(), entry)),
        _ => Err(not_found()),
    }
}

fn not_found() -> Rejection {
    Rejection::new(SESSION_NOT_FOUND, "Session not found").with_status(StatusCode::NOT_FOUND)
}

/// A session-era POST: `initialize` starts a session, anything else must name one.
pub(super) async fn post(
    state: &AppState,
    owner: Subject,
    server: Option<String>,
    headers: &HeaderMap,
    message: Message,
    as_stream: bool,
) -> Result<Response, Rejection> {
    let request = match message {
        Message::Request(r) if r.method == "initialize" => return initialize(state, owner, server, r, as_stream).await,
        Message::Request(r) => Some(r),
        Message::Response => None,
    };
    let (_, entry) = session(state, &owner, headers, server.as_deref())?;
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
    Ok(answer_as(as_stream, StatusCode::OK, answer))
}

/// Start a session: answer `initialize` and, when it succeeded, name the new session.
async fn initialize(
    state: &AppState,
    Subject(owner): Subject,
    server: Option<String>,
    request: rpc::Request,
    as_stream: bool,
) -> Result<Response, Rejection> {
    let has_id = request.id.is_some();
    let answer = state.rpc.dispatch(request, server.as_deref()).await;
    let Some(answer) = answer.filter(|_| has_id) else {
        return Err(Rejection::new(
            rpc::INVALID_REQUEST,
            "Invalid Request: initialize must be a request with an id",
        )
        .with_status(StatusCode::BAD_REQUEST));
    };
    let (id, session) = state.sessions.open_streamable(owner, server).map_err(super::full)?;
    tokio::spawn(session.run());
    let mut response = answer_as(as_stream, StatusCode::OK, answer);
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(SESSION, v);
    }
    Ok(response)
}

pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    owner: Subject,
    headers: HeaderMap,
) -> Response {
    open_stream(&state, &owner, None, &headers, conn)
        .await
        .unwrap_or_else(|r| r)
}

pub async fn get_server(
    State(state): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    owner: Subject,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    open_stream(&state, &owner, Some(server), &headers, conn)
        .await
        .unwrap_or_else(|r| r)
}

/// `GET`: the session's stream for server messages.
async fn open_stream(
    state: &AppState,
    owner: &Subject,
    server: Option<String>,
    headers: &HeaderMap,
    conn: ConnHandle,
) -> Result<Response, Response> {
    if let Some(refusal) = refuse_other_methods(headers) {
        return Err(refusal);
    }
    if !accepts(headers).1 {
        return Err(Rejection::transport(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Accept must include text/event-stream",
        )
        .into_response());
    }
    let (_, entry) = session(state, owner, headers, server.as_deref()).map_err(IntoResponse::into_response)?;
    let control = entry.streamable.as_ref().expect("a Streamable HTTP session");
    let (out, frames) = Registry::stream_channel();
    let streaming = conn.streaming();
    match control.attach(out, conn).await {
        Ok(()) => {}
        Err(Refused::Streaming) => {
            return Err(Rejection::transport(
                StatusCode::CONFLICT,
                "Conflict: this session already has an open stream",
            )
            .into_response());
        }
        Err(Refused::Ended) => return Err(not_found().into_response()),
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

pub async fn delete(State(state): State<AppState>, owner: Subject, headers: HeaderMap) -> Response {
    end_session(&state, &owner, None, &headers).await.unwrap_or_else(|r| r)
}

pub async fn delete_server(
    State(state): State<AppState>,
    owner: Subject,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    end_session(&state, &owner, Some(server), &headers)
        .await
        .unwrap_or_else(|r| r)
}

/// `DELETE`: the client ends its session.
async fn end_session(
    state: &AppState,
    owner: &Subject,
    server: Option<String>,
    headers: &HeaderMap,
) -> Result<Response, Response> {
    if let Some(refusal) = refuse_other_methods(headers) {
        return Err(refusal);
    }
    let (_, entry) = session(state, owner, headers, server.as_deref()).map_err(IntoResponse::into_response)?;
    let control = entry.streamable.as_ref().expect("a Streamable HTTP session");
    match control.delete().await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(_) => Err(not_found().into_response()),
    }
}
