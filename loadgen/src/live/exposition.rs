//! `GET /metrics` of the live feed: the newest snapshot in the Prometheus text format (0.0.4), so the
//! monitoring a team already has can scrape a run as it goes. Names follow Prometheus' conventions
//! (`_total` counters, `_seconds` base units, a histogram's `_bucket`/`_sum`/`_count`); every series
//! carries `run` and `scenario`. An observer's figure that was not measured is left out, not sent as 0.
//! Each sample carries the snapshot's time: the figures change once a second, at the tick, and a
//! scrape between two ticks would otherwise date a second's counts to its own moment — with a 1 s scrape
//! interval that aliasing put `rate()` over 6 s a third off the results file.
//! docs/cli.md lists the families; deploy/grafana/stampede.json charts them.

use exposition::{Type, Writer};

use crate::data::{LatencyBuckets, Observed, Snapshot};

/// The snapshot as exposition text.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    let mut m = Writer::new(&mut out).with_labels(&[("run", &s.run), ("scenario", &s.scenario)]);
    if s.taken_at_ms > 0 {
        m = m.with_timestamp_ms(s.taken_at_ms);
    }

    m.family(
        "stampede_requests_total",
        Type::Counter,
        "Actions finished, by action and outcome (ok, expected, failed).",
    );
    for (name, t) in s.slots.iter().zip(&s.totals) {
        for (outcome, n) in [("ok", t.ok), ("expected", t.expected), ("failed", t.failed)] {
            m.sample(
                "stampede_requests_total",
                &[("action", name), ("outcome", outcome)],
                n as f64,
            );
        }
    }

    m.family(
        "stampede_connect_errors_total",
        Type::Counter,
        "Connections that could not be made (no request sent: not in stampede_requests_total), by action.",
    );
    for (name, t) in s.slots.iter().zip(&s.totals) {
        m.sample(
            "stampede_connect_errors_total",
            &[("action", name)],
            t.connect_errors as f64,
        );
    }
    m.family(
        "stampede_aborted_total",
        Type::Counter,
        "Actions under way when the load's graceful stop ended, cut unanswered, by action.",
    );
    for (name, t) in s.slots.iter().zip(&s.totals) {
        m.sample("stampede_aborted_total", &[("action", name)], t.aborted as f64);
    }

    m.family(
        "stampede_request_duration_seconds",
        Type::Histogram,
        "Latency of finished actions, from each one's intended start.",
    );
    for (name, b) in s.slots.iter().zip(&s.latency) {
        m.histogram(
            "stampede_request_duration_seconds",
            &[("action", name)],
            &LatencyBuckets::BOUNDS_S,
            &b.cumulative,
            b.count,
            b.sum_s,
        );
    }

    m.family("stampede_failures_total", Type::Counter, "Failed actions by kind.");
    for (kind, n) in &s.failures {
        m.sample("stampede_failures_total", &[("kind", kind.label())], *n as f64);
    }
    m.family("stampede_responses_total", Type::Counter, "Answers by HTTP status.");
    for (status, n) in &s.statuses {
        m.sample(
            "stampede_responses_total",
            &[("status", &status.to_string())],
            *n as f64,
        );
    }

    let window = s.window.as_ref();
    m.family("stampede_users", Type::Gauge, "Virtual users running (closed model).");
    if let Some(w) = window {
        m.sample("stampede_users", &[], w.users as f64);
        m.family("stampede_in_flight", Type::Gauge, "Actions under way.");
        m.sample("stampede_in_flight", &[], w.in_flight as f64);
    }
    m.family(
        "stampede_streams_open",
        Type::Gauge,
        "SSE and Streamable HTTP sessions open, client side.",
    );
    m.sample("stampede_streams_open", &[("transport", "sse")], s.sse.open as f64);
    m.sample("stampede_streams_open", &[("transport", "mcp")], s.mcp.open as f64);
    m.family(
        "stampede_streams_opened_total",
        Type::Counter,
        "Sessions opened, client side.",
    );
    m.sample(
        "stampede_streams_opened_total",
        &[("transport", "sse")],
        s.sse.opened as f64,
    );
    m.sample(
        "stampede_streams_opened_total",
        &[("transport", "mcp")],
        s.mcp.opened as f64,
    );

    m.family(
        "stampede_mcp_sessions_total",
        Type::Counter,
        "MCP sessions opened, client side, by the protocol era they spoke.",
    );
    let stateless = s.mcp.stateless as f64;
    m.sample("stampede_mcp_sessions_total", &[("era", "stateless")], stateless);
    m.sample(
        "stampede_mcp_sessions_total",
        &[("era", "session")],
        s.mcp.opened as f64 - stateless,
    );
    m.family(
        "stampede_mcp_mrtr_rounds_total",
        Type::Counter,
        "Stateless era: retries of requests answered input_required.",
    );
    m.sample("stampede_mcp_mrtr_rounds_total", &[], s.mcp.mrtr_rounds as f64);
    m.family(
        "stampede_mcp_cache_hits_total",
        Type::Counter,
        "Requests answered from the client's cache (cache = true), not sent.",
    );
    m.sample("stampede_mcp_cache_hits_total", &[], s.mcp.cache_hits as f64);

    m.family(
        "stampede_run_elapsed_seconds",
        Type::Gauge,
        "Time since the load started.",
    );
    m.sample("stampede_run_elapsed_seconds", &[], s.elapsed_s);
    m.family("stampede_run_phase", Type::Gauge, "1 for the phase the run is in.");
    m.sample("stampede_run_phase", &[("phase", s.phase.label())], 1.0);
    m.family("stampede_run_finished", Type::Gauge, "1 once the run is over.");
    m.sample("stampede_run_finished", &[], f64::from(u8::from(s.finished)));

    if let Some(w) = window {
        observed(&mut m, &w.observed);
    }
    out
}

/// The observers' figures of the newest second, each only when it was measured.
fn observed(m: &mut Writer<'_>, o: &Observed) {
    let gauges: [(&str, &str, Option<f64>); 10] = [
        ("stampede_target_cpu_percent", "Target CPU, 100 = one core.", o.cpu_pct),
        (
            "stampede_target_blocked_queries",
            "PostgreSQL backends waiting on a lock (the most in the second).",
            o.blocked_queries.map(f64::from),
        ),
        (
            "stampede_target_longest_lock_wait_seconds",
            "The longest lock wait under way.",
            o.longest_lock_wait_s,
        ),
        (
            "stampede_target_idle_in_transaction",
            "PostgreSQL backends idle in a transaction.",
            o.idle_in_tx.map(f64::from),
        ),
        (
            "stampede_target_mcp_sessions_active",
            "MCP sessions the target reports.",
            o.mcp_sessions_active,
        ),
        (
            "stampede_target_sse_sessions_active",
            "Deprecated (one release): stampede_target_mcp_sessions_active.",
            o.mcp_sessions_active,
        ),
        (
            "stampede_pgbouncer_clients_waiting",
            "Clients waiting for a PgBouncer server connection.",
            o.pgbouncer_waiting.map(f64::from),
        ),
        (
            "stampede_target_resident_memory_bytes",
            "The target's resident memory (replicas summed).",
            o.target_rss_bytes.map(|v| v as f64),
        ),
        (
            "stampede_target_open_fds",
            "The target's open file descriptors (replicas summed).",
            o.target_fds.map(f64::from),
        ),
        (
            "stampede_target_threads",
            "The target's threads (replicas summed).",
            o.target_threads.map(f64::from),
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(v) = value {
            m.family(name, Type::Gauge, help);
            m.sample(name, &[], v);
        }
    }
    let sockets = [
        ("established", o.tcp_established),
        ("close_wait", o.tcp_close_wait),
        ("time_wait", o.tcp_time_wait),
    ];
    if sockets.iter().any(|(_, n)| n.is_some()) {
        let name = "stampede_target_tcp_sockets";
        m.family(
            name,
            Type::Gauge,
            "The target's TCP sockets on its listening ports, by state.",
        );
        for (state, n) in sockets {
            if let Some(n) = n {
                m.sample(name, &[("state", state)], f64::from(n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The target's resources are gauges when measured, and absent, not 0, when not.
    #[test]
    fn resources_are_written_only_when_measured() {
        let o = Observed {
            target_rss_bytes: Some(22_544_384),
            target_fds: Some(12),
            tcp_close_wait: Some(3),
            ..Observed::default()
        };
        let mut out = String::new();
        observed(&mut Writer::new(&mut out), &o);
        assert!(
            out.contains("\nstampede_target_resident_memory_bytes 22544384\n"),
            "{out}"
        );
        assert!(out.contains("\nstampede_target_open_fds 12\n"), "{out}");
        assert!(
            out.contains("stampede_target_tcp_sockets{state=\"close_wait\"} 3\n"),
            "{out}"
        );
        assert!(!out.contains("stampede_target_threads"), "{out}");
        assert!(!out.contains("established"), "{out}");
        let mut out = String::new();
        observed(&mut Writer::new(&mut out), &Observed::default());
        assert_eq!(out, "");
    }

    /// Every metric the shipped Grafana dashboard queries is one this module writes.
    #[test]
    fn the_grafana_dashboard_asks_for_metrics_that_exist() {
        let mut snapshot: Snapshot = serde_json::from_value(serde_json::json!({
            "scenario": "s", "target": "t", "phase": "steady", "elapsed_s": 1.0, "remaining_s": 1.0,
            "slots": ["a"], "window": null, "totals": [], "totals_all": {
                "count": 0, "ok": 0, "expected": 0, "failed": 0, "rps": 0.0, "mean_ms": null, "p50_ms": null,
                "p90_ms": null, "p95_ms": null, "p99_ms": null, "max_ms": null},
            "sse": {"open": 0, "opened": 0, "closed_abrupt": 0, "closed_rst": 0, "closed_graceful": 0,
                    "server_closed": 0, "peak_open": 0},
            "statuses": {}, "failures": {}, "thresholds": {}, "finished": false
        }))
        .unwrap();
        snapshot.window = Some(
            serde_json::from_value(serde_json::json!({
                "t": 1, "phase": "steady", "target": 1.0, "users": 1, "in_flight": 0, "sse_open": 0, "dropped": 0,
                "actions": [], "all": snapshot.totals_all,
                "observed": {"cpu_pct": 1.0, "blocked_queries": 1, "longest_lock_wait_s": 1.0, "idle_in_tx": 1,
                             "idle_in_tx_longest_s": null, "blocking_chain": [], "mcp_sessions_active": 1.0,
                             "lock_conflicts_total": null, "mcp_session_ends_total": {}, "db_pool_in_use": null,
                             "db_lock_waits_in_flight": null, "pgbouncer_waiting": 1}
            }))
            .unwrap(),
        );
        let written = render(&snapshot);
        let dashboard = include_str!("../../../deploy/grafana/stampede.json");
        let mut asked = std::collections::BTreeSet::new();
        for (i, _) in dashboard.match_indices("stampede_") {
            let name: String = dashboard[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            asked.insert(name);
        }
        asked.remove("stampede_");
        assert!(asked.len() >= 10, "{asked:?}");
        for name in &asked {
            let family = name.trim_end_matches("_bucket");
            assert!(
                written.contains(&format!("# TYPE {family} ")),
                "the dashboard asks for {name}:\n{written}"
            );
        }
    }
}
