//! Target-side observers, on the load's one-second timeline and through the post-load window: the
//! target's Prometheus metrics, PostgreSQL's blocked queries and blocking chains, PgBouncer's waiting
//! clients, the target's CPU
//! (from /proc when it is a local process, else from `process_cpu_seconds_total`), and its memory,
//! files, threads and TCP sockets by state (from /proc). A source that is
//! not configured or not reachable gives "not measured" (`null`), never 0, and the run goes on.
//!
//! Each observer is one module: an `Observer` (started from the configuration, asked for each window,
//! naming its source) and a summarizer over the saved windows (so a replayed results file is
//! summarized by the same code). `OBSERVERS` registers them; see ARCHITECTURE.md, "How to add an
//! observer".

pub mod cpu;
pub mod metrics;
pub mod pgbouncer;
pub mod postgres;
pub mod prometheus;
pub mod resources;

use std::time::Duration;

use crate::data::{Observed, ObservedSummary, Sources};

/// Where the observers look.
#[derive(Debug, Clone, Default)]
pub struct ObserveConfig {
    /// Full URLs of the Prometheus endpoints: one per replica, whose figures are summed.
    pub metrics_urls: Vec<String>,
    pub postgres: Option<String>,
    /// PgBouncer's admin console (`postgres://user@host:port/pgbouncer`).
    pub pgbouncer: Option<String>,
    /// Local processes to read CPU from (replicas: summed; one gone, and it is not measured).
    pub pids: Vec<u32>,
    /// With its descendants.
    pub children: bool,
    /// The target's listening ports (each replica's, not a proxy's), whose sockets are counted by state.
    pub ports: Vec<u16>,
}

/// One source of target-side figures while a run goes on. Background work (a scrape loop, a polling
/// connection) belongs to the observer and stops when it is dropped.
pub trait Observer: Send {
    /// Close the window ending now: put what was seen over it into `o`; leave what was not measured.
    fn window(&mut self, o: &mut Observed);

    /// Name where it reads, for the results.
    fn source(&self, sources: &mut Sources);

    /// Whether its first reading is in, so the load may begin (a counter's change over the run is
    /// counted from a reading taken before it, not from the end of its first second).
    fn ready(&self) -> bool {
        true
    }

    /// Put its counters as they stand before the load into `o`.
    fn before(&self, _o: &mut Observed) {}
}

/// The saved windows a summary is made from, and where the load ended in them.
pub struct Windows<'a> {
    /// The counters read before the load; `None` in files written before they were.
    pub before: Option<&'a Observed>,
    /// `(t, in post-load, observed)` per window.
    pub windows: &'a [(u64, bool, &'a Observed)],
    pub load_end_s: f64,
    /// Part of the post-load window left out of the settled figures.
    pub settle: Duration,
}

/// An observer kind: how to start it, and how to summarize what it put into the windows.
pub struct Registration {
    pub start: fn(&ObserveConfig, &reqwest::Client) -> Option<Box<dyn Observer>>,
    pub summarize: fn(&Windows<'_>, &mut ObservedSummary),
}

/// Every observer, in the order each window is filled.
const OBSERVERS: [Registration; 5] = [
    cpu::OBSERVER,
    metrics::OBSERVER,
    postgres::OBSERVER,
    pgbouncer::OBSERVER,
    resources::OBSERVER,
];

/// The observers of a run.
pub struct Observers {
    running: Vec<Box<dyn Observer>>,
}

impl Observers {
    pub fn start(config: ObserveConfig, http: reqwest::Client) -> Observers {
        Observers {
            running: OBSERVERS.iter().filter_map(|r| (r.start)(&config, &http)).collect(),
        }
    }

    /// Human-readable sources, for the results.
    pub fn sources(&self) -> Sources {
        let mut sources = Sources::default();
        for o in &self.running {
            o.source(&mut sources);
        }
        sources
    }

    /// The counters as they stand before the load: each observer's first reading, waited for up
    /// to `within` (one that has none by then leaves its counters out, and they are counted from
    /// the first window).
    pub async fn before(&mut self, within: Duration) -> Observed {
        let deadline = tokio::time::Instant::now() + within;
        while !self.running.iter().all(|o| o.ready()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut observed = Observed::default();
        for o in &self.running {
            o.before(&mut observed);
        }
        observed
    }

    /// Close the window ending now: CPU over it, the worst PostgreSQL figures in it, the latest metrics.
    pub fn window(&mut self) -> Observed {
        let mut observed = Observed::default();
        for o in &mut self.running {
            o.window(&mut observed);
        }
        observed
    }

    /// Stop every observer's background work; answer where they read.
    pub fn stop(&mut self) -> Sources {
        let sources = self.sources();
        self.running.clear();
        sources
    }
}

/// Summarize the per-window observations: `(t, in post-load, observed)`, settle counted from the end of
/// the load; counters change from `before`, the reading taken before the load, when there is one.
pub fn summarize(
    before: Option<&Observed>,
    windows: &[(u64, bool, &Observed)],
    load_end_s: f64,
    settle: Duration,
    sources: Sources,
) -> ObservedSummary {
    let w = Windows {
        before,
        windows,
        load_end_s,
        settle,
    };
    let mut summary = ObservedSummary {
        sources,
        ..ObservedSummary::default()
    };
    for r in &OBSERVERS {
        (r.summarize)(&w, &mut summary);
    }
    summary
}

/// Where /proc figures of the target's processes come from: `/proc/1 + /proc/2 (sum of 2 replicas)`.
fn pid_source(pids: &[u32], children: bool) -> String {
    let mut source = pids
        .iter()
        .map(|p| format!("/proc/{p}"))
        .collect::<Vec<_>>()
        .join(" + ");
    if children {
        source.push_str(" and descendants");
    }
    if pids.len() > 1 {
        source.push_str(&format!(" (sum of {} replicas)", pids.len()));
    }
    source
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

impl Windows<'_> {
    /// One figure from every window that measured it.
    fn each<T>(&self, f: impl Fn(&Observed) -> Option<T>) -> Vec<T> {
        self.windows.iter().filter_map(|(_, _, o)| f(o)).collect()
    }

    /// Whether the window ending at `t` is in the settled part of the post-load window: it covers
    /// (t-1, t], so it counts when it starts after load end + settle.
    fn settled(&self, t: u64, post: bool) -> bool {
        post && (t as f64 - 1.0) >= self.load_end_s + self.settle.as_secs_f64() - 0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_stays_unmeasured_and_post_load_settles() {
        let idle = Observed::default();
        let s = summarize(
            None,
            &[(1, false, &idle), (2, true, &idle)],
            1.0,
            Duration::from_secs(5),
            Sources::default(),
        );
        assert_eq!(s.cpu_load_mean_pct, None);
        assert_eq!(s.blocked_queries_max, None);
        assert_eq!(s.lock_conflicts, None);

        let busy = |cpu: f64, blocked: u32| Observed {
            cpu_pct: Some(cpu),
            blocked_queries: Some(blocked),
            ..Observed::default()
        };
        let (a, b, c, d, e) = (busy(150.0, 3), busy(90.0, 0), busy(80.0, 0), busy(2.0, 0), busy(1.0, 0));
        // Load ends at 2 s; settle 2 s: windows starting at 4 s or later count as settled.
        let w = [
            (1, false, &a),
            (2, false, &b),
            (3, true, &c),
            (4, true, &c),
            (5, true, &d),
            (6, true, &e),
        ];
        let s = summarize(None, &w, 2.0, Duration::from_secs(2), Sources::default());
        assert_eq!(s.cpu_load_max_pct, Some(150.0));
        assert_eq!(s.cpu_post_load_max_pct, Some(80.0));
        assert_eq!(s.cpu_post_load_settled_mean_pct, Some(1.5));
        assert_eq!(s.blocked_queries_max, Some(3));
    }
}
