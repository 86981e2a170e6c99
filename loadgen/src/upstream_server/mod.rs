//! A built-in upstream MCP server: what a gateway federates. A real gateway registers an upstream,
//! connects to it, initializes, lists its tools and forwards `tools/call` there; stampede needs one to
//! point gateways at. It speaks MCP over both transports — the HTTP+SSE one (`GET /sse`, then
//! `POST /message?session_id=…` with replies on the stream, protocol 2024-11-05) and Streamable HTTP
//! (`POST`/`GET`/`DELETE /mcp` with `Mcp-Session-Id`, 2025-03-26 and 2025-06-18) — has REST endpoints
//! for REST-integration tools, and the field's upstream behaviour as knobs: latency as a distribution
//! (separately for `initialize`), an error rate and a stall rate, each counted in its own
//! `/metrics/prometheus`.
//!
//! It runs as its own process (`stampede upstream`), started by a run that asks for it, so its CPU is
//! measured apart from the generator's and the target's.

mod fixtures;
mod http_sse;
mod input_fixtures;
mod mcp;
mod metrics;
mod peer;
mod rest;
pub mod spawn;
mod streamable_http;
mod task_fixtures;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::mpsc;

use crate::lang::DurRange;
pub use metrics::Counters;

/// How the upstream behaves.
#[derive(Debug, Clone)]
pub struct Knobs {
    /// Generated tools besides the built-in ones (`echo`, `time`, `sleep`, `payload`, `fail`, `confirm`).
    pub tools: u32,
    /// Added to every request (uniform in the range).
    pub latency: DurRange,
    /// Added to `initialize` instead (a gateway's activation does it).
    pub initialize_latency: DurRange,
    /// Share of requests answered with an error (JSON-RPC -32603, or HTTP 500 on REST).
    pub error_rate: f64,
    /// Share of requests accepted and never answered.
    pub stall_rate: f64,
    /// Streamable HTTP: answer requests as an SSE-framed stream rather than JSON, when the client
    /// accepts both.
    pub sse_replies: bool,
    /// Origins the MCP endpoints accept besides loopback ones (`protocol::origin`).
    pub allowed_origins: Vec<String>,
    /// A `subscriptions/listen` stream tells of a list change (each kind it opted in to) this often,
    /// as though the catalogue changed; never when unset.
    pub list_changed_every: Option<std::time::Duration>,
    /// Also serve the official conformance suite's fixtures (`fixtures.rs`).
    pub conformance: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            tools: 0,
            latency: DurRange::default(),
            initialize_latency: DurRange::default(),
            error_rate: 0.0,
            stall_rate: 0.0,
            sse_replies: false,
            allowed_origins: Vec::new(),
            list_changed_every: None,
            conformance: false,
        }
    }
}

/// An HTTP+SSE session: where its replies go, and its handshake.
type SseSession = (mpsc::Sender<String>, Arc<protocol::handshake::Handshake>);

/// The server's shared state.
pub struct Upstream {
    pub knobs: Knobs,
    pub counters: Counters,
    /// HTTP+SSE sessions: where a session's replies go, and its handshake.
    http_sse: Mutex<HashMap<String, SseSession>>,
    /// Streamable HTTP sessions: the protocol version each negotiated.
    streamable: Mutex<HashMap<String, String>>,
    /// Requests to clients waiting for their answers; the logging level asked for.
    peers: peer::Peers,
    /// The tasks extension's tasks (with `--conformance`).
    tasks: task_fixtures::Tasks,
}

impl Upstream {
    pub fn new(knobs: Knobs) -> Arc<Upstream> {
        Arc::new(Upstream {
            knobs,
            counters: Counters::default(),
            http_sse: Mutex::default(),
            streamable: Mutex::default(),
            peers: peer::Peers::default(),
            tasks: task_fixtures::Tasks::default(),
        })
    }

    /// What happens to a request before it is answered: a stall (never), an injected error, or a delay.
    async fn fate(&self, initialize: bool) -> Fate {
        let mut rng = fastrand::Rng::new();
        if self.knobs.stall_rate > 0.0 && rng.f64() < self.knobs.stall_rate {
            self.counters.stalls.inc();
            return Fate::Stall;
        }
        let delay = if initialize {
            self.knobs.initialize_latency
        } else {
            self.knobs.latency
        }
        .sample(&mut rng);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.knobs.error_rate > 0.0 && rng.f64() < self.knobs.error_rate {
            self.counters.injected_errors.inc();
            return Fate::Error;
        }
        Fate::Answer
    }
}

/// What a request comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Answer,
    Error,
    /// Accepted, never answered: the caller waits until the client gives up.
    Stall,
}

/// Wait forever (until the connection or the task is dropped).
async fn stall() -> ! {
    std::future::pending::<()>().await;
    unreachable!("pending never completes")
}

pub fn router(state: Arc<Upstream>) -> Router {
    let origins = Arc::new(protocol::origin::Origins::new(state.knobs.allowed_origins.clone()));
    // The MCP transports check a browser's Origin (DNS rebinding); the rest does not.
    let transports = Router::new()
        .route("/sse", get(http_sse::open))
        .route("/message", post(http_sse::message))
        .route(
            "/mcp",
            post(streamable_http::post)
                .get(streamable_http::get)
                .delete(streamable_http::delete),
        )
        .route_layer(axum::middleware::from_fn_with_state(origins, protocol::origin::guard));
    Router::new()
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "healthy"})) }),
        )
        .merge(transports)
        .route("/rest/echo", post(rest::echo))
        .route("/rest/time", get(rest::time))
        .route("/metrics/prometheus", get(metrics::prometheus))
        .with_state(state)
}

/// Serve on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    knobs: Knobs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(Upstream::new(knobs));
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// How often an idle stream says it is alive.
const KEEPALIVE: Duration = Duration::from_secs(15);
