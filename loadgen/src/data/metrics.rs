//! The named figures of a run that thresholds and gates speak of, per scope (`all`, or an action's
//! name), taken from a results file or from a live view. A figure that was not measured is absent.

use std::collections::BTreeMap;

use super::observed::ObservedSummary;
use super::summary::{FailureKind, Summary};

/// What a metric's numbers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Millis,
    /// A fraction (0.001 = 0.1 %).
    Ratio,
    /// Percent of one core.
    PercentOfCore,
    Count,
    PerSecond,
    Seconds,
    Bytes,
    BytesPerMinute,
    PerMinute,
}

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// How the gate judges a metric against a baseline (scope `all`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GateRule {
    /// Not gated (thresholds may still name it).
    None,
    /// A signal that does not depend on the machine: at most `limit` (or what the baseline itself
    /// reached, if more).
    Absolute { limit: f64 },
    /// A speed signal: its change from the baseline within `tolerance` (or the baseline's own noise).
    Relative {
        tolerance: f64,
        /// Samples the run needs before it is judged (a p99 of 300 requests is noise).
        min_samples: u64,
        /// CPU seconds the figure must rest on (process CPU comes in 10 ms ticks).
        min_cpu_seconds: f64,
    },
}

/// One named figure: what thresholds, the gate, `compare`, the report and the dashboard know of it.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: MetricKind,
    pub better: Better,
    pub gate: GateRule,
    /// Its row in `compare` (and the report's before/after table), if it has one.
    pub label: Option<&'static str>,
}

const fn m(name: &'static str, kind: MetricKind, better: Better) -> Metric {
    Metric {
        name,
        kind,
        better,
        gate: GateRule::None,
        label: None,
    }
}

impl Metric {
    const fn shown(mut self, label: &'static str) -> Metric {
        self.label = Some(label);
        self
    }

    const fn at_most(mut self, limit: f64) -> Metric {
        self.gate = GateRule::Absolute { limit };
        self
    }

    const fn within(mut self, tolerance: f64, min_samples: u64, min_cpu_seconds: f64) -> Metric {
        self.gate = GateRule::Relative {
            tolerance,
            min_samples,
            min_cpu_seconds,
        };
        self
    }
}

use Better::{Higher, Lower};
use MetricKind::{Bytes, BytesPerMinute, Count, Millis, PerMinute, PerSecond, PercentOfCore, Ratio, Seconds};

/// Every metric, in the order tables list them.
pub const METRICS: &[Metric] = &[
    m("rps", PerSecond, Higher)
        .shown("requests per second")
        .within(0.15, 0, 0.0),
    m("p50", Millis, Lower).shown("p50 (ms)").within(0.25, 20, 0.0),
    m("p90", Millis, Lower),
    m("p95", Millis, Lower),
    m("p99", Millis, Lower).shown("p99 (ms)").within(0.50, 1000, 0.0),
    m("max", Millis, Lower),
    m("mean", Millis, Lower),
    m("count", Count, Higher),
    m("failures", Count, Lower),
    m("failure_rate", Ratio, Lower).shown("failure rate").at_most(0.001),
    m("unexpected_statuses", Count, Lower)
        .shown("unexpected statuses")
        .at_most(0.0),
    m("blocked_queries.max", Count, Lower)
        .shown("blocked queries (max)")
        .at_most(0.0),
    m("blocked_queries.mean", Count, Lower),
    m("lock_wait.max", Seconds, Lower).shown("longest lock wait (s)"),
    m("pgbouncer_waiting.max", Count, Lower).shown("PgBouncer clients waiting (max)"),
    m("pgbouncer_waiting.mean", Count, Lower),
    m("pgbouncer_wait.max", Seconds, Lower).shown("longest PgBouncer wait (s)"),
    m("load_cpu.mean", PercentOfCore, Lower).shown("target CPU during load (%)"),
    m("load_cpu.max", PercentOfCore, Lower),
    m("post_load_cpu.mean", PercentOfCore, Lower)
        .shown("target CPU after load, settled (%)")
        .at_most(5.0),
    m("post_load_cpu.max", PercentOfCore, Lower),
    m("mcp_sessions_left", Count, Lower)
        .shown("MCP sessions left open")
        .at_most(0.0),
    m("lock_conflicts", Count, Lower),
    m("mcp_sessions_peak", Count, Lower).shown("MCP sessions open at once (peak)"),
    m("generator_cpu_per_request", Seconds, Lower)
        .shown("generator CPU s per request")
        .within(0.25, 0, 1.0),
    m("target_cpu_per_request", Seconds, Lower)
        .shown("target CPU s per request")
        .within(0.25, 0, 1.0),
    m("target_cpu_per_session", Seconds, Lower).shown("target CPU s per MCP session"),
    m("target_rss.load_max", Bytes, Lower),
    m("target_rss.settled", Bytes, Lower).shown("target memory after load, settled (MiB)"),
    m("target_rss.slope", BytesPerMinute, Lower),
    m("target_fds.load_max", Count, Lower),
    m("target_fds.settled", Count, Lower).shown("target open files after load, settled"),
    m("target_fds.settled_growth", Ratio, Lower),
    m("target_fds.slope", PerMinute, Lower),
    m("target_threads.settled", Count, Lower),
    m("close_wait.load_max", Count, Lower),
    m("close_wait.settled", Count, Lower).shown("CLOSE_WAIT sockets after load, settled"),
];

/// Metrics renamed, by their old names, accepted for one release: (old, new).
pub const RENAMED: &[(&str, &str)] = &[("sse_sessions_left", "mcp_sessions_left")];

/// The metric called `name` (or, for one release, formerly called so).
pub fn metric(name: &str) -> Option<&'static Metric> {
    let name = RENAMED
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new);
    METRICS.iter().find(|m| m.name == name)
}

pub fn metric_kind(name: &str) -> Option<MetricKind> {
    metric(name).map(|m| m.kind)
}

/// Named values of one scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics(BTreeMap<String, f64>);

impl Metrics {
    pub fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.0.keys().cloned()
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }

    pub fn set(&mut self, name: &str, value: Option<f64>) {
        match value {
            Some(v) if v.is_finite() => {
                self.0.insert(name.to_owned(), v);
            }
            _ => {
                self.0.remove(name);
            }
        }
    }

    /// The request figures of a summary (an action's, or all of them).
    pub fn from_summary(s: &Summary, unexpected_statuses: Option<u64>) -> Metrics {
        let mut m = Metrics::default();
        m.set("p50", s.p50_ms);
        m.set("p90", s.p90_ms);
        m.set("p95", s.p95_ms);
        m.set("p99", s.p99_ms);
        m.set("max", s.max_ms);
        m.set("mean", s.mean_ms);
        m.set("rps", Some(s.rps));
        m.set("count", Some(s.count as f64));
        m.set("failures", Some((s.failed + s.connect_errors) as f64));
        m.set("failure_rate", s.failure_rate());
        m.set("unexpected_statuses", unexpected_statuses.map(|n| n as f64));
        m
    }

    /// Add the target-side figures (scope `all` only).
    pub fn add_observed(&mut self, o: &ObservedSummary) {
        self.set("blocked_queries.max", o.blocked_queries_max.map(f64::from));
        self.set("blocked_queries.mean", o.blocked_queries_mean);
        self.set("lock_wait.max", o.longest_lock_wait_s);
        self.set("pgbouncer_waiting.max", o.pgbouncer_waiting_max.map(f64::from));
        self.set("pgbouncer_waiting.mean", o.pgbouncer_waiting_mean);
        self.set("pgbouncer_wait.max", o.pgbouncer_longest_wait_s);
        self.set("load_cpu.mean", o.cpu_load_mean_pct);
        self.set("load_cpu.max", o.cpu_load_max_pct);
        // "post-load CPU" is the settled mean: does the target come back to idle?
        self.set("post_load_cpu.mean", o.cpu_post_load_settled_mean_pct);
        self.set("post_load_cpu.max", o.cpu_post_load_max_pct);
        self.set("mcp_sessions_left", o.mcp_sessions_active_end);
        self.set("lock_conflicts", o.lock_conflicts);
        let r = &o.resources;
        let n = |v: Option<u64>| v.map(|v| v as f64);
        self.set("target_rss.load_max", n(r.target_rss_load_max_bytes));
        self.set("target_rss.settled", n(r.target_rss_settled_bytes));
        self.set("target_rss.slope", r.target_rss_slope_bytes_per_min);
        self.set("target_fds.load_max", r.target_fds_load_max.map(f64::from));
        self.set("target_fds.settled", r.target_fds_settled);
        // A ratio is a fraction, so that "5%" in a threshold reads as 0.05.
        self.set(
            "target_fds.settled_growth",
            r.target_fds_settled_growth_pct.map(|p| p / 100.0),
        );
        self.set("target_fds.slope", r.target_fds_slope_per_min);
        self.set("target_threads.settled", r.target_threads_settled);
        self.set("close_wait.load_max", r.close_wait_load_max.map(f64::from));
        self.set("close_wait.settled", r.close_wait_settled);
    }
}

/// What the named figures of a run are made from — alike for a finished run (`Results::metrics`) and
/// for the dashboard's view of one still going, so a threshold is judged the same by both.
pub struct Figures<'a> {
    /// Per action: its name, its summary, and its unexpected statuses when they were counted per action.
    pub actions: Vec<(&'a str, &'a Summary, Option<u64>)>,
    pub totals: &'a Summary,
    pub failures: &'a BTreeMap<FailureKind, u64>,
    pub observed: &'a ObservedSummary,
    /// The generator's CPU seconds over the load, when measured.
    pub generator_cpu_s: Option<f64>,
    /// MCP sessions (Streamable HTTP) the client opened, and the most open at once, when it opened any.
    pub mcp_sessions: Option<(u64, i64)>,
    pub load_seconds: f64,
}

impl Figures<'_> {
    /// The named figures per scope: each action's, and `all` with the target-side ones.
    pub fn by_scope(&self) -> BTreeMap<String, Metrics> {
        let mut scopes = BTreeMap::new();
        for (name, summary, unexpected) in &self.actions {
            scopes.insert((*name).to_owned(), Metrics::from_summary(summary, *unexpected));
        }
        let mut all = Metrics::from_summary(self.totals, Some(unexpected(self.failures)));
        all.add_observed(self.observed);
        all.set("mcp_sessions_peak", self.mcp_sessions.map(|(_, peak)| peak as f64));
        // What a session costs the target, whatever number of requests its era makes of it.
        if let (Some((opened, _)), Some(pct)) = (self.mcp_sessions, self.observed.cpu_load_mean_pct) {
            all.set(
                "target_cpu_per_session",
                Some(pct / 100.0 * self.load_seconds / opened as f64),
            );
        }
        // CPU seconds per request: the generator's own, and the target's over the load.
        let requests = self.totals.count as f64;
        if requests > 0.0 {
            all.set("generator_cpu_per_request", self.generator_cpu_s.map(|c| c / requests));
            all.set(
                "target_cpu_per_request",
                self.observed
                    .cpu_load_mean_pct
                    .map(|pct| pct / 100.0 * self.load_seconds / requests),
            );
        }
        scopes.insert("all".to_owned(), all);
        scopes
    }
}

/// Failures of kind `status` among `failures`.
pub fn unexpected(failures: &BTreeMap<FailureKind, u64>) -> u64 {
    failures.get(&FailureKind::Status).copied().unwrap_or(0)
}
