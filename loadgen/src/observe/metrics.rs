//! The target's own metrics: its Prometheus endpoint scraped once a second — MCP sessions active (both transports) and
//! their ends by reason, lock conflicts, the database pool in use, lock waits in flight, and (when the
//! target is not a local process) its CPU from `process_cpu_seconds_total`. Replicas are scraped each at
//! its own address and summed; a window in which one did not answer is not measured.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cpu::CpuRate;
use super::{Observer, Registration, Windows, max, prometheus};
use crate::data::{Observed, ObservedSummary, Sources};

pub const OBSERVER: Registration = Registration {
    start: |config, http| {
        if config.metrics_urls.is_empty() {
            return None;
        }
        let urls = config.metrics_urls.clone();
        let scrapes: Vec<Slot> = urls.iter().map(|_| Arc::default()).collect();
        let tasks = urls
            .iter()
            .zip(&scrapes)
            .map(|(url, slot)| tokio::spawn(scrape_loop(url.clone(), http.clone(), Arc::clone(slot))))
            .collect();
        let mut metrics = Metrics {
            urls,
            scrapes,
            tasks,
            cpu: config.pids.is_empty().then(CpuRate::default),
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
    sessions_active: Option<f64>,
    lock_conflicts: Option<f64>,
    session_ends: BTreeMap<String, f64>,
    pool_in_use: Option<f64>,
    lock_waits: Option<f64>,
}

impl Scrape {
    /// Another replica's reading added in: counters and gauges sum; a figure one of them lacks is
    /// not measured.
    fn add(&mut self, o: &Scrape) {
        fn both(a: &mut Option<f64>, b: Option<f64>) {
            *a = a.zip(b).map(|(a, b)| a + b);
        }
        self.at = self.at.max(o.at);
        both(&mut self.cpu_seconds, o.cpu_seconds);
        both(&mut self.sessions_active, o.sessions_active);
        both(&mut self.lock_conflicts, o.lock_conflicts);
        both(&mut self.pool_in_use, o.pool_in_use);
        both(&mut self.lock_waits, o.lock_waits);
        for (reason, n) in &o.session_ends {
            *self.session_ends.entry(reason.clone()).or_default() += n;
        }
    }
}

/// The latest reading of one endpoint; `None` when its last scrape failed.
#[derive(Default)]
struct Reading {
    latest: Mutex<Option<Scrape>>,
    /// The first scrape has been tried.
    tried: AtomicBool,
}

type Slot = Arc<Reading>;

struct Metrics {
    urls: Vec<String>,
    scrapes: Vec<Slot>,
    tasks: Vec<JoinHandle<()>>,
    /// The target's CPU from its counter, when no local process is read instead.
    cpu: Option<CpuRate>,
}

impl Metrics {
    /// The endpoints' latest readings summed, or `None` when one of them has none.
    fn combined(&self) -> Option<Scrape> {
        let mut total: Option<Scrape> = None;
        for slot in &self.scrapes {
            let s = slot.latest.lock().expect("scrape lock");
            let s = s.as_ref().filter(|s| s.at.is_some())?;
            match &mut total {
                Some(t) => t.add(s),
                None => total = Some(s.clone()),
            }
        }
        total
    }

    fn cpu_reading(&self) -> Option<(Instant, f64)> {
        let s = self.combined()?;
        Some((s.at?, s.cpu_seconds?))
    }
}

impl Drop for Metrics {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl Observer for Metrics {
    fn window(&mut self, o: &mut Observed) {
        if self.cpu.is_some() {
            let now = self.cpu_reading();
            o.cpu_pct = self.cpu.as_mut().and_then(|rate| rate.next(now));
        }
        if let Some(s) = self.combined() {
            o.mcp_sessions_active = s.sessions_active;
            o.lock_conflicts_total = s.lock_conflicts;
            o.mcp_session_ends_total = s.session_ends;
            o.db_pool_in_use = s.pool_in_use;
            o.db_lock_waits_in_flight = s.lock_waits;
        }
    }

    fn ready(&self) -> bool {
        self.scrapes.iter().all(|s| s.tried.load(Ordering::Acquire))
    }

    fn before(&self, o: &mut Observed) {
        if let Some(s) = self.combined() {
            o.lock_conflicts_total = s.lock_conflicts;
            o.mcp_session_ends_total = s.session_ends;
        }
    }

    fn source(&self, sources: &mut Sources) {
        sources.metrics = Some(self.urls.join(" + "));
        if self.cpu.is_some() {
            sources.cpu = Some("process_cpu_seconds_total".to_owned());
        }
    }
}

async fn scrape_loop(url: String, http: reqwest::Client, slot: Slot) {
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
                // A gateway of the release before names the families `sse_session*`.
                sessions_active: prometheus::sum(&s, "mcp_sessions_active")
                    .or_else(|| prometheus::sum(&s, "sse_sessions_active")),
                lock_conflicts: prometheus::sum(&s, "lock_conflicts_total"),
                session_ends: Some(prometheus::by_label(&s, "mcp_session_ends_total", "reason"))
                    .filter(|ends| !ends.is_empty())
                    .unwrap_or_else(|| prometheus::by_label(&s, "sse_session_ends_total", "reason")),
                pool_in_use: prometheus::with_label(&s, "db_pool_connections", "state", "in_use"),
                lock_waits: prometheus::sum(&s, "db_lock_waits_in_flight"),
            }
        });
        // A failed scrape leaves the window unmeasured rather than reusing an old reading.
        *slot.latest.lock().expect("scrape lock") = reading;
        slot.tried.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
}

/// Counters as differences between the reading before the load (else the first window that scraped)
/// and the last window that scraped; gauges at their peak and at the end.
fn summarize(w: &Windows<'_>, s: &mut ObservedSummary) {
    let scraped = |o: &&Observed| o.lock_conflicts_total.is_some();
    let first = w
        .before
        .filter(scraped)
        .or_else(|| w.windows.iter().map(|(_, _, o)| *o).find(scraped));
    let last = w.windows.iter().rev().map(|(_, _, o)| *o).find(scraped);
    if let (Some(first), Some(last)) = (first, last) {
        for (reason, n) in &last.mcp_session_ends_total {
            s.mcp_session_ends.insert(
                reason.clone(),
                n - first.mcp_session_ends_total.get(reason).copied().unwrap_or(0.0),
            );
        }
        s.lock_conflicts = last
            .lock_conflicts_total
            .zip(first.lock_conflicts_total)
            .map(|(b, a)| b - a);
    }
    s.mcp_sessions_active_max = max(&w.each(|o| o.mcp_sessions_active));
    s.mcp_sessions_active_end = w.windows.iter().rev().find_map(|(_, _, o)| o.mcp_sessions_active);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn counted(ends: f64, conflicts: f64) -> Observed {
        Observed {
            lock_conflicts_total: Some(conflicts),
            mcp_session_ends_total: BTreeMap::from([("client_gone".to_owned(), ends)]),
            ..Observed::default()
        }
    }

    /// Sessions that end in the first second are counted: the change runs from the reading before
    /// the load, not from the end of the first window.
    #[test]
    fn counters_change_from_the_reading_before_the_load() {
        let (before, one, two) = (counted(10.0, 1.0), counted(15.0, 3.0), counted(19.0, 4.0));
        let windows = [(1, false, &one), (2, true, &two)];
        let summary = |before| {
            let mut s = ObservedSummary::default();
            let w = Windows {
                before,
                windows: &windows,
                load_end_s: 1.0,
                settle: Duration::ZERO,
            };
            summarize(&w, &mut s);
            s
        };
        let s = summary(Some(&before));
        assert_eq!(s.mcp_session_ends["client_gone"], 9.0);
        assert_eq!(s.lock_conflicts, Some(3.0));
        // A file written before the reading was taken: from the first window, as it was.
        let s = summary(None);
        assert_eq!(s.mcp_session_ends["client_gone"], 4.0);
        assert_eq!(s.lock_conflicts, Some(1.0));
    }
}
