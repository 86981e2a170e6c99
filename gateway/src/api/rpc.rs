//! `POST /rpc`: one JSON-RPC message over plain HTTP, answered in the response (no session, no stream).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::extract::RawBody;
use crate::rpc;
use axum::extract::State;

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// `POST /rpc`: malformed JSON → 400 with -32700; otherwise 200 with the result or the JSON-RPC error;
/// a notification → 202 without a body.
pub async fn rpc_http(State(state): State<AppState>, RawBody(body): RawBody) -> Response {
    let request = match rpc::parse(&body) {
        Ok(r) => r,
        Err(answer) => return json_bytes(StatusCode::BAD_REQUEST, answer),
    };
    match state.rpc.dispatch(request, None).await {
        Some(answer) => json_bytes(StatusCode::OK, answer),
        None => StatusCode::ACCEPTED.into_response(),
    }
}
