//! The target's own metrics: its Prometheus endpoint scraped once a second — MCP sessions active (both transports) and
//! their ends by reason, lock conflicts, the database pool in use, lock waits in flight, and (when the
//! target is not a local process) its CPU from `process_cpu_seconds_total`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cpu::CpuRate;
use super::{Observer, Registration, Windows, max, prometheus};
use crate::data::{Observed, ObservedSummary, Sources};

pub const OBSERVER: Registration = Registration {
    start: |config, http| {
        let url = config.metrics_url.clone()?;
        let scrape = Arc::new(Mutex::new(None));
        let task = tokio::spawn(scrape_loop(url.clone(), http.clone(), Arc::clone(&scrape)));
        let mut metrics = Metrics {
            url,
            scrape,
            task,
            cpu: config.pid.is_none().then(CpuRate::default),
        };
        let now = metrics.cpu_reading();
        if let Some(rate) = &mut metrics.cpu {
            rate.next(now);
        }
        Some(Box::new(metrics))
    },
    summarize,
};

#[derive(Debug, Clone, Default)]
struct Scrape {
    at: Option<Instant>,
    cpu_seconds: Option<f64>,
    sse_active: Option<f64>,
    lock_conflicts: Option<f64>,
    sse_ends: BTreeMap<String, f64>,
    pool_in_use: Option<f64>,
    lock_waits: Option<f64>,
}

struct Metrics {
    url: String,
    scrape: Arc<Mutex<Option<Scrape>>>,
    task: JoinHandle<()>,
    /// The target's CPU from its counter, when no local process is read instead.
    cpu: Option<CpuRate>,
}

impl Metrics {
    fn cpu_reading(&self) -> Option<(Instant, f64)> {
        let s = self.scrape.lock().expect("scrape lock");
        let s = s.as_ref()?;
        Some((s.at?, s.cpu_seconds?))
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Observer for Metrics {
    fn window(&mut self, o: &mut Observed) {
        if self.cpu.is_some() {
            let now = self.cpu_reading();
            o.cpu_pct = self.cpu.as_mut().and_then(|rate| rate.next(now));
        }
        let scrape = self
            .scrape
            .lock()
            .expect("scrape lock")
            .clone()
            .filter(|s| s.at.is_some());
        if let Some(s) = scrape {
            o.sse_sessions_active = s.sse_active;
            o.lock_conflicts_total = s.lock_conflicts;
            o.sse_session_ends_total = s.sse_ends;
            o.db_pool_in_use = s.pool_in_use;
            o.db_lock_waits_in_flight = s.lock_waits;
        }
    }

    fn source(&self, sources: &mut Sources) {
        sources.metrics = Some(self.url.clone());
        if self.cpu.is_some() {
            sources.cpu = Some("process_cpu_seconds_total".to_owned());
        }
    }
}

async fn scrape_loop(url: String, http: reqwest::Client, slot: Arc<Mutex<Option<Scrape>>>) {
    loop {
        let text = async {
            let resp = http.get(&url).timeout(Duration::from_secs(2)).send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            resp.text().await.ok()
        }
        .await;
        let reading = text.map(|t| {
            let s = prometheus::parse(&t);
            Scrape {
                at: Some(Instant::now()),
                cpu_seconds: prometheus::sum(&s, "process_cpu_seconds_total"),
                sse_active: prometheus::sum(&s, "sse_sessions_active"),
                lock_conflicts: prometheus::sum(&s, "lock_conflicts_total"),
                sse_ends: prometheus::by_label(&s, "sse_session_ends_total", "reason"),
                pool_in_use: prometheus::with_label(&s, "db_pool_connections", "state", "in_use"),
                lock_waits: prometheus::sum(&s, "db_lock_waits_in_flight"),
            }
        });
        // A failed scrape leaves the window unmeasured rather than reusing an old reading.
        *slot.lock().expect("scrape lock") = reading;
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// Counters as differences between the first and the last window that scraped; gauges at their peak
/// and at the end.
fn summarize(w: &Windows<'_>, s: &mut ObservedSummary) {
    let first = w.windows.iter().find(|(_, _, o)| o.lock_conflicts_total.is_some());
    let last = w
        .windows
        .iter()
        .rev()
        .find(|(_, _, o)| o.lock_conflicts_total.is_some());
    if let (Some((_, _, first)), Some((_, _, last))) = (first, last) {
        for (reason, n) in &last.sse_session_ends_total {
            s.sse_session_ends.insert(
                reason.clone(),
                n - first.sse_session_ends_total.get(reason).copied().unwrap_or(0.0),
            );
        }
        s.lock_conflicts = last
            .lock_conflicts_total
            .zip(first.lock_conflicts_total)
            .map(|(b, a)| b - a);
    }
    s.sse_sessions_active_max = max(&w.each(|o| o.sse_sessions_active));
    s.sse_sessions_active_end = w.windows.iter().rev().find_map(|(_, _, o)| o.sse_sessions_active);
}
