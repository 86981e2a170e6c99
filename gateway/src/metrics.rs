//! Prometheus metrics, recorded without locks on the request path: per-route status counters and
//! latency histograms are arrays of atomics, found under a read lock that is only written when a
//! route is seen for the first time. Rendered as the Prometheus text format on scrape.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use exposition::{Type, Writer};

use crate::model::Kind;
use crate::session::SessionCounts;
use crate::store::{DbStats, PoolStats};

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const STATUS_MIN: usize = 100;
const STATUS_COUNT: usize = 500;

struct RouteMetrics {
    /// Index: status - 100.
    statuses: [AtomicU64; STATUS_COUNT],
    /// Non-cumulative bucket counts; the last slot is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl RouteMetrics {
    fn new() -> Self {
        RouteMetrics {
            statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// The gateway's counters. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct Metrics {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    routes: RwLock<HashMap<String, Arc<RouteMetrics>>>,
    lock_conflicts: [AtomicU64; Kind::ALL.len()],
}

fn kind_index(kind: Kind) -> usize {
    Kind::ALL.iter().position(|k| *k == kind).expect("every kind is in ALL")
}

impl Metrics {
    /// Record one finished request on `route` (the matched path template).
    pub fn record_request(&self, route: &str, status: u16, elapsed: Duration) {
        let route_metrics = self.route(route);
        if let Some(slot) = (status as usize)
            .checked_sub(STATUS_MIN)
            .and_then(|i| route_metrics.statuses.get(i))
        {
            slot.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS.iter().position(|le| secs <= *le).unwrap_or(BUCKETS.len());
        route_metrics.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        route_metrics
            .sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn record_lock_conflict(&self, kind: Kind) {
        self.inner.lock_conflicts[kind_index(kind)].fetch_add(1, Ordering::Relaxed);
    }

    fn route(&self, route: &str) -> Arc<RouteMetrics> {
        if let Some(m) = self.inner.routes.read().expect("metrics lock").get(route) {
            return Arc::clone(m);
        }
        let mut routes = self.inner.routes.write().expect("metrics lock");
        Arc::clone(
            routes
                .entry(route.to_owned())
                .or_insert_with(|| Arc::new(RouteMetrics::new())),
        )
    }

    /// The Prometheus text exposition of everything, plus the store and process figures.
    pub fn render(&self, info: &[(&str, &str)], pool: PoolStats, db: &DbStats, sessions: &[SessionCounts]) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let routes: Vec<(String, Arc<RouteMetrics>)> = {
            let map = self.inner.routes.read().expect("metrics lock");
            let mut v: Vec<_> = map.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let mut w = Writer::new(&mut out);
        w.family("stampede_gateway_info", Type::Gauge, "Configuration of this gateway.");
        w.sample("stampede_gateway_info", info, 1.0);
        render_requests(&mut w, &routes);

        w.family(
            "lock_conflicts_total",
            Type::Counter,
            "Requests refused with 409 because their row was locked.",
        );
        for kind in Kind::ALL {
            let n = self.inner.lock_conflicts[kind_index(kind)].load(Ordering::Relaxed);
            w.sample("lock_conflicts_total", &[("entity", kind.key())], n as f64);
        }
        w.single(
            "db_lock_waits_in_flight",
            Type::Gauge,
            "Statements now waiting for a row or database lock.",
            db.lock_waits_in_flight() as f64,
        );
        w.family(
            "db_pool_connections",
            Type::Gauge,
            "Database pool connections by state.",
        );
        let in_use = pool.open.saturating_sub(pool.idle);
        w.sample("db_pool_connections", &[("state", "in_use")], f64::from(in_use));
        w.sample("db_pool_connections", &[("state", "idle")], f64::from(pool.idle));
        w.sample("db_pool_connections", &[("state", "max")], f64::from(pool.max));
        render_sessions(&mut w, sessions);
        render_process(&mut w);
        out
    }
}

/// Per route: requests by status, and the latency histogram.
fn render_requests(w: &mut Writer<'_>, routes: &[(String, Arc<RouteMetrics>)]) {
    w.family(
        "http_requests_total",
        Type::Counter,
        "HTTP requests by matched route and status.",
    );
    let mut status = String::new();
    for (route, m) in routes {
        for (i, c) in m.statuses.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                status.clear();
                let _ = write!(status, "{}", i + STATUS_MIN);
                w.sample(
                    "http_requests_total",
                    &[("route", route), ("status", &status)],
                    n as f64,
                );
            }
        }
    }
    w.family(
        "http_request_duration_seconds",
        Type::Histogram,
        "HTTP request latency by matched route.",
    );
    for (route, m) in routes {
        let mut cumulative = [0u64; BUCKETS.len()];
        let mut total = 0;
        for (i, c) in cumulative.iter_mut().enumerate() {
            total += m.buckets[i].load(Ordering::Relaxed);
            *c = total;
        }
        total += m.buckets[BUCKETS.len()].load(Ordering::Relaxed);
        let sum = m.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        w.histogram(
            "http_request_duration_seconds",
            &[("route", route)],
            &BUCKETS,
            &cumulative,
            total,
            sum,
        );
    }
}

/// MCP sessions of both transports, told apart by `transport` (`sse`, `streamable_http`). The
/// `sse_session*` names are the same families under their old names, kept for one release.
fn render_sessions(w: &mut Writer<'_>, sessions: &[SessionCounts]) {
    for prefix in ["mcp", "sse"] {
        let deprecated = if prefix == "sse" {
            " Deprecated: the same as mcp_sessions_*."
        } else {
            ""
        };
        let active = format!("{prefix}_sessions_active");
        w.family(
            &active,
            Type::Gauge,
            &format!("MCP sessions now registered, by transport.{deprecated}"),
        );
        for c in sessions {
            w.sample(&active, &[("transport", c.transport.label())], c.active as f64);
        }
        let total = format!("{prefix}_sessions_total");
        w.family(
            &total,
            Type::Counter,
            &format!("MCP sessions opened, by transport.{deprecated}"),
        );
        for c in sessions {
            w.sample(&total, &[("transport", c.transport.label())], c.total as f64);
        }
        let ends = format!("{prefix}_session_ends_total");
        w.family(
            &ends,
            Type::Counter,
            &format!("MCP sessions ended, by transport and reason.{deprecated}"),
        );
        for c in sessions {
            for (reason, n) in c.ends {
                w.sample(
                    &ends,
                    &[("transport", c.transport.label()), ("reason", reason.label())],
                    n as f64,
                );
            }
        }
    }
    w.family(
        "mcp_sessions_refused_total",
        Type::Counter,
        "MCP sessions refused at a cap (MAX_SESSIONS: total; MAX_SESSIONS_PER_SUBJECT: subject), by transport.",
    );
    for c in sessions {
        for (cap, n) in c.refused {
            w.sample(
                "mcp_sessions_refused_total",
                &[("transport", c.transport.label()), ("cap", cap)],
                n as f64,
            );
        }
    }
}

/// The standard process metrics, read from /proc/self. Omitted (not reported as 0) where unreadable.
fn render_process(w: &mut Writer<'_>) {
    let Ok(me) = procfs::process::Process::myself() else {
        return;
    };
    if let Ok(stat) = me.stat() {
        let ticks = procfs::ticks_per_second() as f64;
        let cpu = (stat.utime + stat.stime) as f64 / ticks;
        w.single(
            "process_cpu_seconds_total",
            Type::Counter,
            "Total user and system CPU time spent in seconds.",
            cpu,
        );
        let rss = stat.rss * procfs::page_size();
        w.single(
            "process_resident_memory_bytes",
            Type::Gauge,
            "Resident memory size in bytes.",
            rss as f64,
        );
    }
    if let Ok(fds) = me.fd_count() {
        w.single(
            "process_open_fds",
            Type::Gauge,
            "Number of open file descriptors.",
            fds as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_histograms_render_as_prometheus_text() {
        let m = Metrics::default();
        m.record_request("/tools", 200, Duration::from_millis(3));
        m.record_request("/tools", 200, Duration::from_millis(30));
        m.record_request("/tools", 409, Duration::from_secs(20));
        m.record_lock_conflict(Kind::Tool);
        let sse = crate::session::Registry::new(
            crate::config::SseBehaviour {
                detection: crate::config::Detection::On,
                send_timeout: None,
                keepalive: Duration::from_secs(30),
                rapid_yield_window: Duration::from_secs(1),
                rapid_yield_max: None,
                rapid_yield_consecutive: None,
                require_initialize: true,
            },
            None,
            crate::session::SessionCaps::default(),
        );
        let pool = PoolStats {
            max: 5,
            open: 3,
            idle: 1,
        };
        let text = m.render(&[("profile", "fixed")], pool, &DbStats::default(), &sse.counts());
        assert!(text.contains("mcp_sessions_active{transport=\"sse\"} 0\n"));
        assert!(text.contains("mcp_sessions_active{transport=\"streamable_http\"} 0\n"));
        assert!(text.contains("mcp_session_ends_total{transport=\"sse\",reason=\"client_gone\"} 0\n"));
        // The old names, kept one release.
        assert!(text.contains("sse_sessions_active{transport=\"streamable_http\"} 0\n"));
        assert!(text.contains("sse_session_ends_total{transport=\"sse\",reason=\"client_gone\"} 0\n"));
        assert!(
            text.contains("http_requests_total{route=\"/tools\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("http_requests_total{route=\"/tools\",status=\"409\"} 1\n"));
        assert!(text.contains("http_request_duration_seconds_bucket{route=\"/tools\",le=\"0.005\"} 1\n"));
        assert!(text.contains("http_request_duration_seconds_bucket{route=\"/tools\",le=\"10\"} 2\n"));
        assert!(text.contains("http_request_duration_seconds_bucket{route=\"/tools\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("http_request_duration_seconds_count{route=\"/tools\"} 3\n"));
        assert!(text.contains("lock_conflicts_total{entity=\"tool\"} 1\n"));
        assert!(text.contains("db_pool_connections{state=\"in_use\"} 2\n"));
        assert!(text.contains("stampede_gateway_info{profile=\"fixed\"} 1\n"));
        assert!(text.contains("process_cpu_seconds_total "));
        assert!(text.contains("mcp_session_ends_total{transport=\"streamable_http\",reason=\"deleted\"} 0\n"));
    }
}
