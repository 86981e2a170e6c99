//! What the target-side observers saw: per window, and summed up over the run. `None` is "not
//! measured", never 0.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One backend in a blocking chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainLink {
    pub pid: i32,
    pub state: Option<String>,
    pub wait_event_type: Option<String>,
    /// Seconds since its current query (or transaction, when idle in one) started.
    pub age_s: f64,
    /// Truncated to 200 characters.
    pub query: String,
}

/// What the observers saw in one window. `None`: not measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// Target CPU over the window, 100 = one core.
    pub cpu_pct: Option<f64>,
    /// Backends waiting on a lock (the most seen in the window).
    pub blocked_queries: Option<u32>,
    pub longest_lock_wait_s: Option<f64>,
    pub idle_in_tx: Option<u32>,
    pub idle_in_tx_longest_s: Option<f64>,
    /// The longest blocking chain seen in the window (blocked first); empty when none.
    pub blocking_chain: Vec<ChainLink>,
    /// From the target's metrics.
    #[serde(alias = "sse_sessions_active")]
    pub mcp_sessions_active: Option<f64>,
    pub lock_conflicts_total: Option<f64>,
    #[serde(alias = "sse_session_ends_total")]
    pub mcp_session_ends_total: BTreeMap<String, f64>,
    pub db_pool_in_use: Option<f64>,
    pub db_lock_waits_in_flight: Option<f64>,
    /// From PgBouncer's `SHOW POOLS`: clients waiting for a server connection (the most seen in the
    /// window, summed over the pools) and the longest wait.
    #[serde(default)]
    pub pgbouncer_waiting: Option<u32>,
    #[serde(default)]
    pub pgbouncer_longest_wait_s: Option<f64>,
    /// The target's processes (replicas summed): resident memory, open file descriptors, threads.
    #[serde(default)]
    pub target_rss_bytes: Option<u64>,
    #[serde(default)]
    pub target_fds: Option<u32>,
    #[serde(default)]
    pub target_threads: Option<u32>,
    /// The target's TCP sockets by state on its listening ports (the machine's /proc/net).
    #[serde(default)]
    pub tcp_established: Option<u32>,
    #[serde(default)]
    pub tcp_close_wait: Option<u32>,
    #[serde(default)]
    pub tcp_time_wait: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sources {
    /// Where target CPU came from; null: not measured.
    pub cpu: Option<String>,
    pub metrics: Option<String>,
    pub postgres: Option<String>,
    #[serde(default)]
    pub pgbouncer: Option<String>,
    /// Where the target's memory, files, threads and sockets came from.
    #[serde(default)]
    pub resources: Option<String>,
}

/// The observers' figures over the run. Every `Option` is `None` when that source gave nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ObservedSummary {
    pub sources: Sources,
    pub cpu_load_mean_pct: Option<f64>,
    pub cpu_load_max_pct: Option<f64>,
    pub cpu_post_load_mean_pct: Option<f64>,
    pub cpu_post_load_max_pct: Option<f64>,
    /// Mean over the post-load window after the settle time: does the target come back to idle?
    pub cpu_post_load_settled_mean_pct: Option<f64>,
    pub settle_s: f64,
    pub blocked_queries_max: Option<u32>,
    pub blocked_queries_mean: Option<f64>,
    pub longest_lock_wait_s: Option<f64>,
    pub idle_in_tx_max: Option<u32>,
    pub idle_in_tx_longest_s: Option<f64>,
    /// Distinct blocking chains seen (by their queries), longest first, at most 10.
    pub blocking_chains: Vec<Vec<ChainLink>>,
    /// Change of the target's `lock_conflicts_total` over the run.
    pub lock_conflicts: Option<f64>,
    #[serde(alias = "sse_sessions_active_max")]
    pub mcp_sessions_active_max: Option<f64>,
    /// At the end of the post-load window.
    #[serde(alias = "sse_sessions_active_end")]
    pub mcp_sessions_active_end: Option<f64>,
    /// Change of `mcp_session_ends_total{reason}` over the run.
    #[serde(alias = "sse_session_ends")]
    pub mcp_session_ends: BTreeMap<String, f64>,
    /// PgBouncer: the most clients waiting for a server connection in any window, the mean over the
    /// windows, and the longest wait.
    #[serde(default)]
    pub pgbouncer_waiting_max: Option<u32>,
    #[serde(default)]
    pub pgbouncer_waiting_mean: Option<f64>,
    #[serde(default)]
    pub pgbouncer_longest_wait_s: Option<f64>,
    #[serde(flatten)]
    pub resources: ResourcesSummary,
}

/// The target's resources over the run: before the load, the most during it, the mean once the
/// post-load window has settled (a leak stays), and the slope after the load's first half.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResourcesSummary {
    pub target_rss_before_bytes: Option<u64>,
    pub target_rss_load_max_bytes: Option<u64>,
    pub target_rss_settled_bytes: Option<u64>,
    pub target_rss_slope_bytes_per_min: Option<f64>,
    pub target_fds_before: Option<u32>,
    pub target_fds_load_max: Option<u32>,
    pub target_fds_settled: Option<f64>,
    /// (settled - before) / before, in percent.
    pub target_fds_settled_growth_pct: Option<f64>,
    pub target_fds_slope_per_min: Option<f64>,
    pub target_threads_before: Option<u32>,
    pub target_threads_load_max: Option<u32>,
    pub target_threads_settled: Option<f64>,
    /// Sockets the peer closed and the target did not: each one a connection it leaks.
    pub close_wait_before: Option<u32>,
    pub close_wait_load_max: Option<u32>,
    pub close_wait_settled: Option<f64>,
    pub established_load_max: Option<u32>,
    pub established_settled: Option<f64>,
    pub time_wait_load_max: Option<u32>,
    pub time_wait_settled: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The resource figures sit flat among the others, and a file written before them still reads.
    #[test]
    fn resources_are_flat_in_the_file_and_absent_ones_read_as_not_measured() {
        let s = ObservedSummary {
            resources: ResourcesSummary {
                close_wait_settled: Some(2.0),
                ..ResourcesSummary::default()
            },
            ..ObservedSummary::default()
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["close_wait_settled"], 2.0);
        assert!(json["target_rss_settled_bytes"].is_null());
        assert_eq!(serde_json::from_value::<ObservedSummary>(json.clone()).unwrap(), s);
        let resource_keys = serde_json::to_value(ResourcesSummary::default()).unwrap();
        let mut old = json;
        old.as_object_mut()
            .unwrap()
            .retain(|k, _| resource_keys.get(k).is_none());
        assert!(old.get("settle_s").is_some() && old.get("close_wait_settled").is_none());
        assert_eq!(
            serde_json::from_value::<ObservedSummary>(old).unwrap().resources,
            ResourcesSummary::default()
        );
    }
}
