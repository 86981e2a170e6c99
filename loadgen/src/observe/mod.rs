//! Target-side observers, on the load's one-second timeline and through the post-load window: the
//! target's Prometheus metrics, PostgreSQL's blocked queries and blocking chains, and the target's CPU
//! (from /proc when it is a local process, else from `process_cpu_seconds_total`). A source that is
//! not configured or not reachable gives "not measured" (`null`), never 0, and the run goes on.

pub mod postgres;
pub mod prometheus;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::data::{ChainLink, Observed, ObservedSummary, Sources};
use postgres::PgWindow;

/// Where the observers look.
#[derive(Debug, Clone, Default)]
pub struct ObserveConfig {
    /// Full URL of the Prometheus endpoint.
    pub metrics_url: Option<String>,
    pub postgres: Option<String>,
    /// A local process to read CPU from.
    pub pid: Option<u32>,
    /// With its descendants.
    pub children: bool,
}

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

/// The shortest interval a CPU percentage is computed over.
const MIN_CPU_WINDOW: Duration = Duration::from_millis(500);

pub struct Observers {
    config: ObserveConfig,
    scrape: Arc<Mutex<Option<Scrape>>>,
    pg: Arc<Mutex<Option<PgWindow>>>,
    tasks: Vec<JoinHandle<()>>,
    last_cpu: Option<(Instant, f64)>,
}

impl Observers {
    pub fn start(config: ObserveConfig, http: reqwest::Client) -> Observers {
        let scrape = Arc::new(Mutex::new(None));
        let pg = Arc::new(Mutex::new(None));
        let mut tasks = Vec::new();
        if let Some(url) = config.metrics_url.clone() {
            let slot = Arc::clone(&scrape);
            tasks.push(tokio::spawn(scrape_loop(url, http, slot)));
        }
        if let Some(url) = config.postgres.clone() {
            tasks.push(tokio::spawn(postgres::observe(url, Arc::clone(&pg))));
        }
        let mut observers = Observers {
            config,
            scrape,
            pg,
            tasks,
            last_cpu: None,
        };
        observers.last_cpu = observers.cpu_now();
        observers
    }

    /// Human-readable sources, for the results.
    pub fn sources(&self) -> Sources {
        Sources {
            cpu: match self.config.pid {
                Some(pid) if self.config.children => Some(format!("/proc/{pid} and descendants")),
                Some(pid) => Some(format!("/proc/{pid}")),
                None => self
                    .config
                    .metrics_url
                    .as_ref()
                    .map(|_| "process_cpu_seconds_total".to_owned()),
            },
            metrics: self.config.metrics_url.clone(),
            postgres: self.config.postgres.as_ref().map(|u| redact(u)),
        }
    }

    /// (when, CPU seconds) of the target now, from /proc or from the latest scrape.
    fn cpu_now(&self) -> Option<(Instant, f64)> {
        match self.config.pid {
            Some(pid) => {
                let own = crate::environment::cpu_seconds_of(&pid.to_string())?;
                let children: f64 = if self.config.children {
                    crate::environment::descendants(pid)
                        .iter()
                        .filter_map(|c| crate::environment::cpu_seconds_of(&c.to_string()))
                        .sum()
                } else {
                    0.0
                };
                Some((Instant::now(), own + children))
            }
            None => {
                let s = self.scrape.lock().expect("scrape lock");
                let s = s.as_ref()?;
                Some((s.at?, s.cpu_seconds?))
            }
        }
    }

    /// Close the window ending now: CPU over it, the worst PostgreSQL figures in it, the latest metrics.
    pub fn window(&mut self) -> Observed {
        let now = self.cpu_now();
        // /proc counts CPU in 10 ms ticks: over a very short window (the last, partial one) the quotient
        // is quantization noise (280 % of a core on 2 cores was seen), so such a window is not measured
        // and the next one starts from the same reading.
        let cpu_pct = match (self.last_cpu, now) {
            (Some((t0, c0)), Some((t1, c1))) if t1.duration_since(t0) >= MIN_CPU_WINDOW => {
                Some(((c1 - c0) / (t1 - t0).as_secs_f64() * 100.0).max(0.0))
            }
            _ => None,
        };
        if now.is_some() && (cpu_pct.is_some() || self.last_cpu.is_none()) {
            self.last_cpu = now;
        }
        let pg = self.pg.lock().expect("pg window lock").take().filter(|w| w.samples > 0);
        let scrape = self
            .scrape
            .lock()
            .expect("scrape lock")
            .clone()
            .filter(|s| s.at.is_some());
        let mut o = Observed {
            cpu_pct,
            ..Observed::default()
        };
        if let Some(w) = pg {
            o.blocked_queries = Some(w.blocked);
            o.longest_lock_wait_s = Some(w.longest_wait_s);
            o.idle_in_tx = Some(w.idle_in_tx);
            o.idle_in_tx_longest_s = Some(w.idle_in_tx_longest_s);
            o.blocking_chain = w.chain;
        }
        if let Some(s) = scrape {
            o.sse_sessions_active = s.sse_active;
            o.lock_conflicts_total = s.lock_conflicts;
            o.sse_session_ends_total = s.sse_ends;
            o.db_pool_in_use = s.pool_in_use;
            o.db_lock_waits_in_flight = s.lock_waits;
        }
        o
    }

    pub fn stop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for Observers {
    fn drop(&mut self) {
        self.stop();
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

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(c) => format!("{}:***{}", &url[..s + 3 + c], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn max(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
}

/// Summarize the per-window observations: `(t, in post-load, observed)`, settle counted from the end of
/// the load.
pub fn summarize(
    windows: &[(u64, bool, &Observed)],
    load_end_s: f64,
    settle: Duration,
    sources: Sources,
) -> ObservedSummary {
    let cpu = |f: &dyn Fn(u64, bool) -> bool| -> Vec<f64> {
        windows
            .iter()
            .filter(|(t, p, _)| f(*t, *p))
            .filter_map(|(_, _, o)| o.cpu_pct)
            .collect()
    };
    let load_cpu = cpu(&|_, post| !post);
    let post_cpu = cpu(&|_, post| post);
    // A window ending at t covers (t-1, t]: settled when it starts after load end + settle.
    let settled_from = load_end_s + settle.as_secs_f64();
    let settled_cpu = cpu(&|t, post| post && (t as f64 - 1.0) >= settled_from - 0.5);
    let blocked: Vec<f64> = windows
        .iter()
        .filter_map(|(_, _, o)| o.blocked_queries.map(f64::from))
        .collect();
    let mut chains: Vec<Vec<ChainLink>> = Vec::new();
    for (_, _, o) in windows {
        if o.blocking_chain.len() > 1 {
            let key: Vec<&str> = o.blocking_chain.iter().map(|l| l.query.as_str()).collect();
            if !chains
                .iter()
                .any(|c| c.iter().map(|l| l.query.as_str()).eq(key.iter().copied()))
            {
                chains.push(o.blocking_chain.clone());
            }
        }
    }
    chains.sort_by_key(|c| std::cmp::Reverse(c.len()));
    chains.truncate(10);
    let first_metrics = windows.iter().find(|(_, _, o)| o.lock_conflicts_total.is_some());
    let last_metrics = windows.iter().rev().find(|(_, _, o)| o.lock_conflicts_total.is_some());
    let sse_active: Vec<f64> = windows.iter().filter_map(|(_, _, o)| o.sse_sessions_active).collect();
    let mut ends = BTreeMap::new();
    if let (Some((_, _, first)), Some((_, _, last))) = (first_metrics, last_metrics) {
        for (reason, n) in &last.sse_session_ends_total {
            ends.insert(
                reason.clone(),
                n - first.sse_session_ends_total.get(reason).copied().unwrap_or(0.0),
            );
        }
    }
    ObservedSummary {
        sources,
        cpu_load_mean_pct: mean(&load_cpu),
        cpu_load_max_pct: max(&load_cpu),
        cpu_post_load_mean_pct: mean(&post_cpu),
        cpu_post_load_max_pct: max(&post_cpu),
        cpu_post_load_settled_mean_pct: mean(&settled_cpu),
        settle_s: settle.as_secs_f64(),
        blocked_queries_max: max(&blocked).map(|m| m as u32),
        blocked_queries_mean: mean(&blocked),
        longest_lock_wait_s: max(&windows
            .iter()
            .filter_map(|(_, _, o)| o.longest_lock_wait_s)
            .collect::<Vec<_>>()),
        idle_in_tx_max: max(&windows
            .iter()
            .filter_map(|(_, _, o)| o.idle_in_tx.map(f64::from))
            .collect::<Vec<_>>())
        .map(|m| m as u32),
        idle_in_tx_longest_s: max(&windows
            .iter()
            .filter_map(|(_, _, o)| o.idle_in_tx_longest_s)
            .collect::<Vec<_>>()),
        blocking_chains: chains,
        lock_conflicts: first_metrics
            .zip(last_metrics)
            .and_then(|((_, _, a), (_, _, b))| Some(b.lock_conflicts_total? - a.lock_conflicts_total?)),
        sse_sessions_active_max: max(&sse_active),
        sse_sessions_active_end: windows.iter().rev().find_map(|(_, _, o)| o.sse_sessions_active),
        sse_session_ends: ends,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_stays_unmeasured_and_post_load_settles() {
        let idle = Observed::default();
        let s = summarize(
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
        let s = summarize(&w, 2.0, Duration::from_secs(2), Sources::default());
        assert_eq!(s.cpu_load_max_pct, Some(150.0));
        assert_eq!(s.cpu_post_load_max_pct, Some(80.0));
        assert_eq!(s.cpu_post_load_settled_mean_pct, Some(1.5));
        assert_eq!(s.blocked_queries_max, Some(3));
    }
}
