//! The HTTP surface (docs/api.md): routes, auth and metrics layers, health endpoints.

mod entities;
mod error;
pub mod extract;
mod forward;
mod mcp;
mod openapi;
mod relay;
mod rpc;
pub mod slowdown;
mod sse;

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemars::JsonSchema;
use serde::Serialize;

pub use error::ApiError;

use crate::auth::Auth;
use crate::config::ReplyFormat;
use crate::metrics::Metrics;
use crate::model::Kind;
use crate::rpc::Rpc;
use crate::session::Registry;
use crate::store::{LockConflict, Store};

/// What every handler can reach: one shared [`App`]. Axum clones the state for every request and
/// every layer that takes it, so a clone is one reference count, not one per part.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl AppState {
    pub fn new(app: App) -> AppState {
        AppState(Arc::new(app))
    }
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}

/// The gateway's parts the handlers use.
pub struct App {
    pub store: Store,
    pub auth: Arc<Auth>,
    pub metrics: Metrics,
    pub rpc: Rpc,
    pub sessions: Arc<Registry>,
    /// Finds sessions held by other replicas; `None` for a gateway alone.
    pub bus: Option<Arc<crate::session::Bus>>,
    /// How `POST /mcp` answers when the client accepts both JSON and a stream.
    pub streamable_replies: ReplyFormat,
    /// HTTP+SSE messages being answered now, all sessions together (`MAX_MESSAGES_IN_FLIGHT`).
    pub messages: Arc<tokio::sync::Semaphore>,
    /// The origins the MCP endpoints accept (`protocol::origin`).
    pub origins: Arc<protocol::origin::Origins>,
    /// The address the gateway listens on, for endpoint URLs when a request has no Host header.
    pub local_host: String,
    /// Labels of `stampede_gateway_info`.
    pub info: Arc<Vec<(&'static str, String)>>,
    /// This replica's name, sent in every answer's `X-Served-By` (`REPLICA_NAME`).
    pub replica: header::HeaderValue,
}

/// The header naming the replica that served an answer.
pub const SERVED_BY: header::HeaderName = header::HeaderName::from_static("x-served-by");

pub fn router(state: AppState, body: extract::BodyLimit) -> axum::Router {
    let mut protected = axum::Router::new();
    for kind in Kind::ALL {
        protected = protected.merge(entities::routes(kind));
    }
    // The MCP transports' endpoints check a browser's Origin (DNS rebinding); `/rpc` is not MCP's.
    let transports = axum::Router::new()
        .route("/sse", get(sse::open_sse))
        .route("/servers/{id}/sse", get(sse::open_server_sse))
        .route("/message", post(sse::post_message))
        .route("/servers/{id}/message", post(sse::post_server_message))
        .route("/mcp", post(mcp::post).get(mcp::get).delete(mcp::delete))
        .route(
            "/servers/{id}/mcp",
            post(mcp::post_server)
                .get(mcp::get_server)
                .delete(mcp::delete_server)
                .layer(middleware::from_fn_with_state(state.clone(), relay::front)),
        )
        .route(
            "/gateways/{id}/mcp",
            post(relay::to_gateway).get(relay::to_gateway).delete(relay::to_gateway),
        )
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state.origins),
            protocol::origin::guard,
        ));
    let protected = protected.route("/rpc", post(rpc::rpc_http)).merge(transports);
    // Layers added last run first: auth, then the forward of a session another replica holds.
    let protected = protected
        .route_layer(middleware::from_fn_with_state(state.clone(), forward::forward))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_auth));
    axum::Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics/prometheus", get(metrics))
        .route("/openapi.json", get(openapi::serve))
        .merge(protected)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body.max_bytes))
        .layer(axum::Extension(body))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// Count and time every request by its route template; count lock conflicts by entity; name the
/// replica that served it (a relayed answer keeps the name of the replica holding the session).
async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .entry(SERVED_BY)
        .or_insert_with(|| state.replica.clone());
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    state
        .metrics
        .record_request(route, response.status().as_u16(), start.elapsed());
    if let Some(conflict) = response.extensions().get::<LockConflict>() {
        state.metrics.record_lock_conflict(conflict.kind);
    }
    response
}

async fn require_auth(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let header = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let claims = state.auth.verify_header(header)?;
    req.extensions_mut().insert(crate::auth::Subject(claims.sub.into()));
    Ok(next.run(req).await)
}

/// The answer of `/health` and `/ready`.
#[derive(Serialize, JsonSchema)]
pub struct Health {
    /// `healthy`/`unhealthy` (`/health`), `ready`/`not ready` (`/ready`).
    status: &'static str,
    /// Why the database did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Whether the database answers `SELECT 1`, in the words of the given endpoint.
async fn probe(state: &AppState, up: &'static str, down: &'static str) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(Health {
            status: up,
            error: None,
        })
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: down,
                error: Some(e.to_string()),
            }),
        )
            .into_response(),
    }
}

async fn health(State(state): State<AppState>) -> Response {
    probe(&state, "healthy", "unhealthy").await
}

async fn ready(State(state): State<AppState>) -> Response {
    probe(&state, "ready", "not ready").await
}

async fn metrics(State(state): State<AppState>) -> Response {
    let info: Vec<(&str, &str)> = state.info.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let text = state.metrics.render(
        &info,
        state.store.pool_stats(),
        state.store.stats(),
        &state.sessions.counts(),
    );
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8"
            .parse()
            .expect("static header"),
    );
    (headers, text).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}
