//! The upstream's own counters, in Prometheus text: requests by transport and method, injected
//! errors, stalls, open sessions, and the process's CPU — what a run reads to see that a federated
//! call really reached the upstream.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use exposition::{Type, Writer};

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
const METHODS: [&str; 13] = [
    "initialize",
    "server/discover",
    "subscriptions/listen",
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
        let mut w = Writer::new(&mut out);
        w.family(
            "upstream_requests_total",
            Type::Counter,
            "MCP requests, by transport and method.",
        );
        for (t, by_method) in TRANSPORTS.iter().zip(&self.requests) {
            for (m, c) in METHODS.iter().zip(by_method) {
                let n = c.get();
                if n > 0 {
                    w.sample("upstream_requests_total", &[("transport", t), ("method", m)], n as f64);
                }
            }
        }
        w.single(
            "upstream_injected_errors_total",
            Type::Counter,
            "Errors answered on purpose (the error rate knob).",
            self.injected_errors.get() as f64,
        );
        w.single(
            "upstream_stalls_total",
            Type::Counter,
            "Requests left unanswered on purpose (the stall rate knob).",
            self.stalls.get() as f64,
        );
        w.family(
            "upstream_sessions_active",
            Type::Gauge,
            "MCP sessions open, by transport.",
        );
        for (t, n) in ["sse", "streamable_http"].iter().zip(&self.sessions) {
            w.sample(
                "upstream_sessions_active",
                &[("transport", t)],
                n.load(Ordering::Relaxed) as f64,
            );
        }
        // Left out, not 0, where /proc cannot be read.
        if let Some(cpu) = crate::host::process_cpu_seconds() {
            w.single(
                "process_cpu_seconds_total",
                Type::Counter,
                "Total user and system CPU time spent in seconds.",
                cpu,
            );
        }
        out
    }
}

pub async fn prometheus(State(up): State<Arc<Upstream>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], up.counters.render())
}
