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
}

/// Every metric a threshold may name.
pub const KNOWN: &[(&str, MetricKind)] = &[
    ("p50", MetricKind::Millis),
    ("p90", MetricKind::Millis),
    ("p95", MetricKind::Millis),
    ("p99", MetricKind::Millis),
    ("max", MetricKind::Millis),
    ("mean", MetricKind::Millis),
    ("rps", MetricKind::PerSecond),
    ("count", MetricKind::Count),
    ("failures", MetricKind::Count),
    ("failure_rate", MetricKind::Ratio),
    ("unexpected_statuses", MetricKind::Count),
    ("blocked_queries.max", MetricKind::Count),
    ("blocked_queries.mean", MetricKind::Count),
    ("lock_wait.max", MetricKind::Seconds),
    ("load_cpu.mean", MetricKind::PercentOfCore),
    ("load_cpu.max", MetricKind::PercentOfCore),
    ("post_load_cpu.mean", MetricKind::PercentOfCore),
    ("post_load_cpu.max", MetricKind::PercentOfCore),
    ("sse_sessions_left", MetricKind::Count),
    ("lock_conflicts", MetricKind::Count),
    ("generator_cpu_per_request", MetricKind::Seconds),
    ("target_cpu_per_request", MetricKind::Seconds),
];

pub fn metric_kind(name: &str) -> Option<MetricKind> {
    KNOWN.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
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
        m.set("failures", Some(s.failed as f64));
        m.set("failure_rate", (s.count > 0).then(|| s.failed as f64 / s.count as f64));
        m.set("unexpected_statuses", unexpected_statuses.map(|n| n as f64));
        m
    }

    /// Add the target-side figures (scope `all` only).
    pub fn add_observed(&mut self, o: &ObservedSummary) {
        self.set("blocked_queries.max", o.blocked_queries_max.map(f64::from));
        self.set("blocked_queries.mean", o.blocked_queries_mean);
        self.set("lock_wait.max", o.longest_lock_wait_s);
        self.set("load_cpu.mean", o.cpu_load_mean_pct);
        self.set("load_cpu.max", o.cpu_load_max_pct);
        // "post-load CPU" is the settled mean: does the target come back to idle?
        self.set("post_load_cpu.mean", o.cpu_post_load_settled_mean_pct);
        self.set("post_load_cpu.max", o.cpu_post_load_max_pct);
        self.set("sse_sessions_left", o.sse_sessions_active_end);
        self.set("lock_conflicts", o.lock_conflicts);
    }
}

/// Failures of kind `status` among `failures`.
pub fn unexpected(failures: &BTreeMap<FailureKind, u64>) -> u64 {
    failures.get(&FailureKind::Status).copied().unwrap_or(0)
}
