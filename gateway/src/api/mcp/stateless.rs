//! The stateless era on `/mcp` (2026-07-28): every POST is one self-contained request, its version
//! and client capabilities in `params._meta` and its routing mirrored in headers
//! (`protocol::envelope::check`, whose refusals carry the specification's codes and statuses). No
//! session, no `GET` stream (405), no `DELETE`; `server/discover` is the handshake; every result
//! carries `resultType`, the gateway's identity and, on lists and reads, caching hints. A
//! `subscriptions/listen` request is answered with its stream (`session::listen`).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::error::{INVALID_REQUEST, http_status};
use protocol::{Era, Rejection, envelope};

use super::{answer_as, header_str};
use crate::api::AppState;
use crate::auth::Subject;
use crate::config::ReplyFormat;
use crate::conn::ConnHandle;
use crate::rpc::{Message, Request};
use crate::session::FrameStream;

/// One stateless POST; `accepts` is what the client's `Accept` allows (JSON, an event stream).
pub(super) async fn post(
    state: &AppState,
    owner: Subject,
    server: Option<String>,
    conn: ConnHandle,
    headers: &HeaderMap,
    message: Message,
    (json_ok, stream_ok): (bool, bool),
) -> Result<Response, Rejection> {
    let request = match message {
        Message::Request(r) => r,
        Message::Response => {
            return Err(Rejection::new(
                INVALID_REQUEST,
                "Invalid Request: a client sends no responses in 2026-07-28",
            ));
        }
    };
    let Some(id) = request.id.as_ref() else {
        // The era defines no client notifications (a client cancels by closing its stream); one
        // sent anyway is acknowledged and dropped, as the official servers do, at a version spoken here.
        envelope::supported(header_str(headers, protocol::header::PROTOCOL_VERSION).unwrap_or_default())?;
        return Ok(StatusCode::ACCEPTED.into_response());
    };
    envelope::check(&request.method, request.meta.as_ref(), &request.params, headers)
        .map_err(|r| r.for_request(Some(id)))?;
    if request.method == "subscriptions/listen" {
        if !stream_ok {
            return Err(Rejection::transport(
                StatusCode::NOT_ACCEPTABLE,
                "Not Acceptable: a listen stream is text/event-stream",
            )
            .for_request(Some(id)));
        }
        return listen(state, owner, server, conn, &request).map_err(|r| r.for_request(Some(id)));
    }
    let as_stream = stream_ok && (!json_ok || state.streamable_replies == ReplyFormat::Sse);
    let answer = state
        .rpc
        .answer(request, server.as_deref(), Era::Stateless)
        .await
        .expect("a request with an id is answered");
    let status = answer.error.map_or(StatusCode::OK, http_status);
    // An error the transport table gives a status travels as plain JSON, so a client reads the status.
    Ok(answer_as(as_stream && status == StatusCode::OK, status, answer.body))
}

/// Answer `subscriptions/listen` with its stream: the acknowledgement, then the changes asked for.
fn listen(
    state: &AppState,
    Subject(owner): Subject,
    server: Option<String>,
    conn: ConnHandle,
    request: &Request,
) -> Result<Response, Rejection> {
    let id = request.id.as_ref().expect("a listen request has an id");
    let filter = request.params.get("notifications").unwrap_or(&serde_json::Value::Null);
    let streaming = conn.streaming();
    let (stream, frames) = state
        .sessions
        .open_listen(owner, server, conn, id, filter)
        .map_err(super::full)?;
    tokio::spawn(stream.run());
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        Body::from_stream(FrameStream::new(frames, streaming)),
    )
        .into_response())
}

/// The era has no `GET` stream and no `DELETE`: a request for either that names a stateless-era
/// version is told which method there is.
pub(super) fn refuse_other_methods(headers: &HeaderMap) -> Option<Response> {
    (Era::of_post(header_str(headers, protocol::header::PROTOCOL_VERSION)) == Era::Stateless).then(|| {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, HeaderValue::from_static("POST"))],
        )
            .into_response()
    })
}
