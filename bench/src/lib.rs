//! `make bench`: stampede measured against the tools people would otherwise use, in the same run, on
//! the same target — its requests per generator CPU-second against oha's and wrk's over a concurrency
//! sweep, the memory an idle SSE stream costs it, and the reference gateway's throughput against the
//! machine's ceiling (a hello-world server).
//!
//! `proc` starts and measures processes (wait4's rusage: the same CPU and peak-RSS measure for every
//! tool), `tools` runs each generator and reads its report, `nginx` is the target no one here wrote
//! (http, https, its own count), `cores` splits the machine between a target and the tool compared,
//! `generator` sets the tools side by side on a target, `sections` are the other parts of the bench,
//! `report` writes the JSON and the Markdown tables, `goals` sets them against what the bench is held
//! to.

pub mod cores;
pub mod gateway;
pub mod generator;
pub mod goals;
pub mod mixed;
pub mod nginx;
pub mod proc;
pub mod report;
pub mod sections;
pub mod tools;

use std::time::Duration;

/// What a bench run does.
#[derive(Debug, Clone)]
pub struct Settings {
    pub duration: Duration,
    pub rounds: usize,
    pub connections: Vec<u32>,
    /// Concurrencies of the https runs (keep-alive); new TLS connections run at the first.
    pub tls_connections: Vec<u32>,
    pub sse_streams: Vec<u32>,
    pub gateway_connections: Vec<u32>,
    /// Every other REST read, and the writes (at the first only).
    pub read_connections: Vec<u32>,
    pub read_duration: Duration,
    /// PostgreSQL admin URL for the gateway section; None: SQLite only.
    pub postgres: Option<String>,
}

/// The median of some values (NaN-free), or None.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}
