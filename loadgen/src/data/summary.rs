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
    /// An answer longer than stampede keeps (64 MiB): cut, its connection closed.
    TooLarge,
    /// The target did not know the session the request named (404 with a session id, or a −32001
    /// refusal): behind a balancer, the request reached a replica that does not hold it.
    SessionNotFound,
}

impl FailureKind {
    pub const ALL: [FailureKind; 7] = [
        FailureKind::Status,
        FailureKind::Timeout,
        FailureKind::Connect,
        FailureKind::Protocol,
        FailureKind::JsonRpc,
        FailureKind::TooLarge,
        FailureKind::SessionNotFound,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Status => "status",
            FailureKind::Timeout => "timeout",
            FailureKind::Connect => "connect",
            FailureKind::Protocol => "protocol",
            FailureKind::JsonRpc => "jsonrpc",
            FailureKind::TooLarge => "too_large",
            FailureKind::SessionNotFound => "session_not_found",
        }
    }
}

impl Summary {
    /// Failed requests and failed connects over both (a target that refuses connections is failing);
    /// `None` when nothing was attempted.
    pub fn failure_rate(&self) -> Option<f64> {
        let attempts = self.count + self.connect_errors;
        (attempts > 0).then(|| (self.failed + self.connect_errors) as f64 / attempts as f64)
    }

    /// Nothing was answered: say so plainly rather than print a table of zeros.
    pub fn nothing_completed(&self) -> bool {
        self.count == 0
    }
}

/// The figures of one action over some span. Latencies of a span without samples are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests answered or failed on a connection that was made (`ok + expected + failed`): what the
    /// rate and the latencies are of.
    pub count: u64,
    pub ok: u64,
    pub expected: u64,
    pub failed: u64,
    /// Requests in flight when the load's graceful stop ended, cut unanswered (oha's "aborted due to
    /// deadline"): started, so accounted for, but in no latency and no rate.
    #[serde(default)]
    pub aborted: u64,
    /// Connections that could not be made: no request was sent, so these are in no count, rate or
    /// latency, but they are failures of the attempt (`failure_rate`).
    #[serde(default)]
    pub connect_errors: u64,
    /// Bytes of answers read (heads and bodies), where the action counts them (`http`, `rpc`); null
    /// when none did.
    #[serde(default)]
    pub bytes_read: Option<u64>,
    pub rps: f64,
    pub mean_ms: Option<f64>,
    #[serde(default)]
    pub min_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}
