//! Prometheus metrics, recorded without locks on the request path: per-route status counters and
//! latency histograms are arrays of atomics, found under a read lock that is only written when a
//! route is seen for the first time. Rendered as the Prometheus text format on scrape.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

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

        out.push_str(
            "# HELP stampede_gateway_info Configuration of this gateway.\n# TYPE stampede_gateway_info gauge\n",
        );
        out.push_str("stampede_gateway_info{");
        for (i, (k, v)) in info.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(out, "{sep}{k}=\"{}\"", escape(v));
        }
        out.push_str("} 1\n");

        out.push_str("# HELP http_requests_total HTTP requests by matched route and status.\n# TYPE http_requests_total counter\n");
        for (route, m) in &routes {
            for (i, c) in m.statuses.iter().enumerate() {
                let n = c.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "http_requests_total{{route=\"{}\",status=\"{}\"}} {n}",
                        escape(route),
                        i + STATUS_MIN
                    );
                }
            }
        }

        out.push_str("# HELP http_request_duration_seconds HTTP request latency by matched route.\n# TYPE http_request_duration_seconds histogram\n");
        for (route, m) in &routes {
            let route = escape(route);
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += m.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += m.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
            );
            let sum = m.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{route=\"{route}\"}} {cumulative}"
            );
        }

        out.push_str("# HELP lock_conflicts_total Requests refused with 409 because their row was locked.\n# TYPE lock_conflicts_total counter\n");
        for kind in Kind::ALL {
            let n = self.inner.lock_conflicts[kind_index(kind)].load(Ordering::Relaxed);
            let _ = writeln!(out, "lock_conflicts_total{{entity=\"{}\"}} {n}", kind.key());
        }

        out.push_str("# HELP db_lock_waits_in_flight Statements now waiting for a row or database lock.\n# TYPE db_lock_waits_in_flight gauge\n");
        let _ = writeln!(out, "db_lock_waits_in_flight {}", db.lock_waits_in_flight());

        out.push_str(
            "# HELP db_pool_connections Database pool connections by state.\n# TYPE db_pool_connections gauge\n",
        );
        let in_use = pool.open.saturating_sub(pool.idle);
        let _ = writeln!(out, "db_pool_connections{{state=\"in_use\"}} {in_use}");
        let _ = writeln!(out, "db_pool_connections{{state=\"idle\"}} {}", pool.idle);
        let _ = writeln!(out, "db_pool_connections{{state=\"max\"}} {}", pool.max);

        // MCP sessions of both transports, told apart by `transport` (`sse`, `streamable_http`). The
        // `sse_session*` names are the same families under their old names, kept for one release.
        for prefix in ["mcp", "sse"] {
            let deprecated = if prefix == "sse" {
                " Deprecated: use mcp_sessions_active."
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "# HELP {prefix}_sessions_active MCP sessions now registered, by transport.{deprecated}\n# TYPE {prefix}_sessions_active gauge"
            );
            for c in sessions {
                let _ = writeln!(
                    out,
                    "{prefix}_sessions_active{{transport=\"{}\"}} {}",
                    c.transport.label(),
                    c.active
                );
            }
            let _ = writeln!(
                out,
                "# HELP {prefix}_sessions_total MCP sessions opened, by transport.{deprecated}\n# TYPE {prefix}_sessions_total counter"
            );
            for c in sessions {
                let _ = writeln!(
                    out,
                    "{prefix}_sessions_total{{transport=\"{}\"}} {}",
                    c.transport.label(),
                    c.total
                );
            }
            let _ = writeln!(
                out,
                "# HELP {prefix}_session_ends_total MCP sessions ended, by transport and reason.{deprecated}\n# TYPE {prefix}_session_ends_total counter"
            );
            for c in sessions {
                for (reason, n) in c.ends {
                    let _ = writeln!(
                        out,
                        "{prefix}_session_ends_total{{transport=\"{}\",reason=\"{}\"}} {n}",
                        c.transport.label(),
                        reason.label()
                    );
                }
            }
        }

        render_process(&mut out);
        out
    }
}

/// The standard process metrics, read from /proc/self. Omitted (not reported as 0) where unreadable.
fn render_process(out: &mut String) {
    let Ok(me) = procfs::process::Process::myself() else {
        return;
    };
    if let Ok(stat) = me.stat() {
        let ticks = procfs::ticks_per_second() as f64;
        let cpu = (stat.utime + stat.stime) as f64 / ticks;
        out.push_str("# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds_total counter\n");
        let _ = writeln!(out, "process_cpu_seconds_total {cpu}");
        let rss = stat.rss * procfs::page_size();
        out.push_str("# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\n");
        let _ = writeln!(out, "process_resident_memory_bytes {rss}");
    }
    if let Ok(fds) = me.fd_count() {
        out.push_str("# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\n");
        let _ = writeln!(out, "process_open_fds {fds}");
    }
}

fn escape(v: &str) -> std::borrow::Cow<'_, str> {
    if v.contains(['\\', '"', '\n']) {
        v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").into()
    } else {
        v.into()
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
            },
            None,
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

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
