//! The upstream's own counters, in Prometheus text: requests by transport and method, injected
//! errors, stalls, open sessions, and the process's CPU — what a run reads to see that a federated
//! call really reached the upstream.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::Upstream;

/// A counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

const TRANSPORTS: [&str; 3] = ["sse", "streamable_http", "rest"];
const METHODS: [&str; 11] = [
    "initialize",
    "notifications/initialized",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "rest",
    "other",
];

#[derive(Debug, Default)]
pub struct Counters {
    /// By transport, then method (both fixed lists, so the labels stay few).
    requests: [[Counter; METHODS.len()]; TRANSPORTS.len()],
    pub injected_errors: Counter,
    pub stalls: Counter,
    /// Open sessions by transport (`sse`, `streamable_http`).
    pub sessions: [AtomicI64; 2],
}

impl Counters {
    pub fn request(&self, transport: &str, method: &str) {
        let t = TRANSPORTS.iter().position(|t| *t == transport).unwrap_or(0);
        let m = METHODS.iter().position(|m| *m == method).unwrap_or(METHODS.len() - 1);
        self.requests[t][m].inc();
    }

    /// Requests of `method` over every transport.
    pub fn requests_of(&self, method: &str) -> u64 {
        let Some(m) = METHODS.iter().position(|x| *x == method) else {
            return 0;
        };
        self.requests.iter().map(|by_method| by_method[m].get()).sum()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# TYPE upstream_requests_total counter\n");
        for (t, by_method) in TRANSPORTS.iter().zip(&self.requests) {
            for (m, c) in METHODS.iter().zip(by_method) {
                let n = c.get();
                if n > 0 {
                    let _ = writeln!(out, "upstream_requests_total{{transport=\"{t}\",method=\"{m}\"}} {n}");
                }
            }
        }
        let _ = writeln!(
            out,
            "# TYPE upstream_injected_errors_total counter\nupstream_injected_errors_total {}",
            self.injected_errors.get()
        );
        let _ = writeln!(
            out,
            "# TYPE upstream_stalls_total counter\nupstream_stalls_total {}",
            self.stalls.get()
        );
        out.push_str("# TYPE upstream_sessions_active gauge\n");
        for (t, n) in ["sse", "streamable_http"].iter().zip(&self.sessions) {
            let _ = writeln!(
                out,
                "upstream_sessions_active{{transport=\"{t}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        // Left out, not 0, where /proc cannot be read.
        if let Some(cpu) = crate::host::process_cpu_seconds() {
            let _ = writeln!(
                out,
                "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu}"
            );
        }
        out
    }
}

pub async fn prometheus(State(up): State<Arc<Upstream>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], up.counters.render())
}
