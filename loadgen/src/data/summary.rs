//! What an action came to over some span: its counts and latency figures, and why it failed.

use serde::{Deserialize, Serialize};

/// Why an action failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// An answer with a status that is neither ok nor expected.
    Status,
    Timeout,
    Connect,
    /// A broken answer: unreadable body, malformed JSON-RPC or SSE.
    Protocol,
    /// A JSON-RPC error that was not declared expected.
    JsonRpc,
}

impl FailureKind {
    pub const ALL: [FailureKind; 5] = [
        FailureKind::Status,
        FailureKind::Timeout,
        FailureKind::Connect,
        FailureKind::Protocol,
        FailureKind::JsonRpc,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Status => "status",
            FailureKind::Timeout => "timeout",
            FailureKind::Connect => "connect",
            FailureKind::Protocol => "protocol",
            FailureKind::JsonRpc => "jsonrpc",
        }
    }
}

/// The figures of one action over some span. Latencies of a span without samples are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub ok: u64,
    pub expected: u64,
    pub failed: u64,
    pub rps: f64,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}
