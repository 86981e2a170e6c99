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

/// Serve the feed until the process ends; answers the bound address.
pub async fn serve(addr: SocketAddr, cell: SnapshotCell) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new()
        .route("/snapshot", get(snapshot))
        .route("/live", get(live))
        .route("/metrics", get(metrics))
        .with_state(cell);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(bound)
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
