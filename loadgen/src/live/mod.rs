//! The live feed of a running `stampede run --live ADDR`: `GET /snapshot` answers the newest snapshot,
//! `GET /live` streams one a second as SSE (`event: snapshot`), for the dashboard; `GET /metrics` is
//! the same snapshot for Prometheus (`exposition.rs`).

mod exposition;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_core::Stream;

use crate::data::Snapshot;
use crate::engine::timeline::SnapshotCell;

/// The variable whose value, when set, every request to the feed must carry as `Bearer …` (and which
/// `stampede-tui attach` sends): the feed says what the run measures, and may be bound where others
/// can reach it (a Kubernetes pod's address).
pub const TOKEN_ENV: &str = "STAMPEDE_LIVE_TOKEN";

/// Serve the feed until the process ends; answers the bound address. With `token`, a request without
/// it is refused (401).
pub async fn serve(addr: SocketAddr, cell: SnapshotCell, token: Option<String>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let mut app = axum::Router::new()
        .route("/snapshot", get(snapshot))
        .route("/live", get(live))
        .route("/metrics", get(metrics))
        .with_state(cell);
    if let Some(token) = token {
        let expected: Arc<str> = format!("Bearer {token}").into();
        app = app.layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let expected = Arc::clone(&expected);
                async move {
                    let given = req
                        .headers()
                        .get(axum::http::header::AUTHORIZATION)
                        .map(|v| v.as_bytes());
                    if given.is_some_and(|g| same(g, expected.as_bytes())) {
                        next.run(req).await
                    } else {
                        let detail = format!("the live feed wants the token in {TOKEN_ENV}, as a Bearer");
                        (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"detail": detail}))).into_response()
                    }
                }
            },
        ));
    }
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(bound)
}

/// Equal bytes, compared in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

async fn snapshot(State(cell): State<SnapshotCell>) -> Response {
    match cell.borrow().clone() {
        Some(s) => Json(s.as_ref().clone()).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"detail": "the run has not started"})),
        )
            .into_response(),
    }
}

async fn metrics(State(cell): State<SnapshotCell>) -> Response {
    let snapshot = cell.borrow().clone();
    match snapshot {
        Some(s) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            exposition::render(&s),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"detail": "the run has not started"})),
        )
            .into_response(),
    }
}

async fn live(State(cell): State<SnapshotCell>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = cell.subscribe();
    let stream = futures_util::stream::unfold((rx, true), |(mut rx, first)| async move {
        if !first && rx.changed().await.is_err() {
            return None;
        }
        let snap: Option<Arc<Snapshot>> = rx.borrow_and_update().clone();
        let event = match snap {
            Some(s) => Event::default()
                .event("snapshot")
                .json_data(s.as_ref())
                .unwrap_or_default(),
            None => Event::default().event("waiting").data("{}"),
        };
        Some((Ok(event), (rx, false)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_feed_with_a_token_answers_only_requests_that_carry_it() {
        let cell: SnapshotCell = Arc::new(tokio::sync::watch::Sender::new(None));
        let addr = serve("127.0.0.1:0".parse().unwrap(), cell, Some("t0ken".into()))
            .await
            .unwrap();
        let http = reqwest::Client::new();
        for path in ["/snapshot", "/metrics", "/live"] {
            let url = format!("http://{addr}{path}");
            let bare = http.get(&url).send().await.unwrap();
            assert_eq!(bare.status(), StatusCode::UNAUTHORIZED, "{path}");
            let wrong = http.get(&url).bearer_auth("guess").send().await.unwrap();
            assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
        // With it: the feed itself (no run yet: 503).
        let given = http
            .get(format!("http://{addr}/snapshot"))
            .bearer_auth("t0ken")
            .send()
            .await
            .unwrap();
        assert_eq!(given.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
