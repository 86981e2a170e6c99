//! REST endpoints, for a gateway's REST-integration tools to have a real URL to call. The knobs apply
//! as to MCP requests: latency, an injected error (500 with a `detail`), a stall.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Fate, Upstream, stall};

async fn judged(up: &Upstream, answer: impl FnOnce() -> Value) -> Response {
    up.counters.request("rest", "rest");
    match up.fate(false).await {
        Fate::Stall => stall().await,
        Fate::Error => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"detail": "injected upstream error"})),
        )
            .into_response(),
        Fate::Answer => Json(answer()).into_response(),
    }
}

/// `POST /rest/echo`: the JSON body back, as `{"echo": …}` (a body that is not JSON is echoed as text).
pub async fn echo(State(up): State<Arc<Upstream>>, body: Bytes) -> Response {
    let value = serde_json::from_slice::<Value>(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    judged(&up, || json!({"echo": value})).await
}

/// `GET /rest/time`: the server's time, RFC 3339.
pub async fn time(State(up): State<Arc<Upstream>>) -> Response {
    judged(
        &up,
        || json!({"time": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()}),
    )
    .await
}
