//! What a person sees of a headless run: a progress line (rewritten in place on a TTY, one line every
//! few seconds otherwise, for CI logs) and the end-of-run summary table.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use crate::data::{Completion, ObservedSummary, Snapshot};
use crate::engine::timeline::SnapshotCell;
use crate::format::ms;
use crate::results::Results;

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{:.2}%", r * 100.0))
}

/// One status line of a snapshot.
pub fn status_line(s: &Snapshot, width: usize) -> String {
    let total = s.elapsed_s + s.remaining_s;
    let (rps, p99, users) = match &s.window {
        Some(w) => (
            w.all.rps,
            w.all.p99_ms,
            if w.users > 0 {
                format!("{} users", w.users)
            } else {
                format!("{:.0}/s", w.target)
            },
        ),
        None => (0.0, None, "-".into()),
    };
    let t = &s.totals_all;
    let observed = s.window.as_ref().map(|w| &w.observed);
    let cpu = observed
        .and_then(|o| o.cpu_pct)
        .map_or("-".to_owned(), |c| format!("{c:.0}%"));
    let blocked = observed
        .and_then(|o| o.blocked_queries)
        .map_or("-".to_owned(), |b| b.to_string());
    let mut line = format!(
        "{:>5.0}s/{:.0}s {:<9} {:>8.0} req/s  p99 {:>7}  fail {:>6}  {}  streams {}  target cpu {cpu} blocked {blocked}",
        s.elapsed_s,
        total,
        s.phase.label(),
        rps,
        ms(p99),
        rate(t.failure_rate()),
        users,
        s.sse.open + s.mcp.open
    );
    if width > 0 && total > 0.0 {
        let bar_len = 20usize;
        let filled = ((s.elapsed_s / total).clamp(0.0, 1.0) * bar_len as f64) as usize;
        let bar = format!("[{}{}] ", "#".repeat(filled), ".".repeat(bar_len - filled));
        line.insert_str(0, &bar);
        line.truncate(width.saturating_sub(1));
    }
    line
}

/// Print progress until the run finishes: in place on a TTY, every `every` otherwise.
pub async fn progress(cell: SnapshotCell, every: Duration) {
    let tty = std::io::stderr().is_terminal();
    let mut rx = cell.subscribe();
    let mut last_print = tokio::time::Instant::now();
    let mut started = false;
    while rx.changed().await.is_ok() {
        let Some(snap) = rx.borrow_and_update().clone() else {
            continue;
        };
        if !started {
            // The first snapshot comes once the target is up and set up: only now has the load started.
            started = true;
            let _ = writeln!(
                std::io::stderr(),
                "{}: load started, {:.0}s to go (post-load window included)",
                snap.scenario,
                snap.remaining_s
            );
        }
        let mut err = std::io::stderr();
        if tty {
            let _ = write!(err, "\r\x1b[2K{}", status_line(&snap, 120));
            let _ = err.flush();
        } else if last_print.elapsed() >= every || snap.finished {
            let _ = writeln!(err, "{}", status_line(&snap, 0));
            last_print = tokio::time::Instant::now();
        }
        if snap.finished {
            if tty {
                let _ = writeln!(err);
            }
            break;
        }
    }
}

/// The end-of-run summary: the run, its actions, SSE, the target's side, thresholds, the generator.
pub fn summary(r: &Results) -> String {
    let mut out = String::new();
    let state = match r.completion {
        Completion::Complete => "complete",
        Completion::Interrupted => "INCOMPLETE (interrupted)",
        Completion::Partial => "INCOMPLETE (a shard missing or interrupted)",
    };
    let part = match (&r.load.shard, &r.merged) {
        (Some(s), _) => format!(", shard {s}"),
        (None, Some(m)) => format!(", merged from {} of {} shards", m.parts.len(), m.shards),
        (None, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "\n{} against {} — {:?} model{}, {:.1}s of load, {}",
        r.scenario.name, r.target.url, r.load.model, part, r.load.seconds, state
    );
    actions_table(&mut out, r);
    outcomes(&mut out, r);
    for (transport, s) in [("SSE sessions", &r.sse), ("Streamable HTTP sessions", &r.mcp)] {
        if s.opened > 0 {
            let _ = writeln!(
                out,
                "{transport}: {} opened, peak {} open at once; ended by the client {} ({} abrupt, {} with RST, {} gracefully, {} deleted), by the server {}, by an error {}; {} re-initialized after 404",
                s.opened,
                s.peak_open,
                s.closed_by_client(),
                s.closed_abrupt,
                s.closed_rst,
                s.closed_graceful,
                s.closed_delete,
                s.server_closed,
                s.errored,
                s.reinitialized
            );
        }
    }
    if r.load.dropped > 0 {
        let _ = writeln!(out, "dropped arrivals (every slot busy): {}", r.load.dropped);
    }
    target_side(&mut out, &r.observed);
    if let Some(u) = &r.upstream {
        let _ = writeln!(
            out,
            "upstream: {}{}, CPU {}",
            u.url,
            if u.spawned { " (spawned)" } else { "" },
            u.cpu_seconds.map_or("not measured".into(), |c| format!("{c:.1} s"))
        );
    }
    for j in &r.thresholds {
        let value = j.value.map_or("not measured".to_owned(), |v| format!("{v:.4}"));
        let _ = writeln!(
            out,
            "threshold {}: {} — {} (value {value})",
            j.scope, j.threshold, j.verdict
        );
    }
    let g = &r.generator;
    let _ = writeln!(
        out,
        "generator: {} CPU s, {} requests per CPU second, peak RSS {}",
        g.cpu_seconds.map_or("not measured".into(), |c| format!("{c:.1}")),
        g.requests_per_cpu_second
            .map_or("not measured".into(), |r| format!("{r:.0}")),
        g.peak_rss_bytes
            .map_or("not measured".into(), |b| format!("{} MiB", b / (1024 * 1024)))
    );
    out
}

/// One row per action and one for all: counts, outcomes, latency percentiles.
fn actions_table(out: &mut String, r: &Results) {
    let name_width = r.actions.iter().map(|a| a.name.len()).max().unwrap_or(6).clamp(6, 48);
    let _ = writeln!(
        out,
        "{:<name_width$}  {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "action", "count", "rps", "ok", "expected", "failed", "p50", "p90", "p99", "max"
    );
    let row = |out: &mut String, name: &str, s: &crate::data::Summary| {
        let name: String = name.chars().take(name_width).collect();
        let _ = writeln!(
            out,
            "{:<name_width$}  {:>8} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            name,
            s.count,
            s.rps,
            s.ok,
            s.expected,
            s.failed,
            ms(s.p50_ms),
            ms(s.p90_ms),
            ms(s.p99_ms),
            ms(s.max_ms)
        );
    };
    for a in &r.actions {
        row(out, &a.name, &a.summary);
    }
    row(out, "all", &r.totals);
}

/// Every request started accounted for: answered, aborted at the end, or never sent (connect errors);
/// then the failure rate, and per action its statuses, failure kinds and first error messages.
fn outcomes(out: &mut String, r: &Results) {
    let t = &r.totals;
    if t.nothing_completed() {
        let _ = writeln!(
            out,
            "no request completed: {} in flight when the load ended (aborted), {} connects failed",
            t.aborted, t.connect_errors
        );
    }
    if t.aborted > 0 {
        let _ = writeln!(
            out,
            "aborted: {} in flight when the load's graceful stop ended (unanswered; in no latency or rate)",
            t.aborted
        );
    }
    if t.connect_errors > 0 {
        let _ = writeln!(
            out,
            "connect errors: {} (no request sent; not in the count, the rate or the latencies)",
            t.connect_errors
        );
    }
    let _ = writeln!(out, "failure rate {}", rate(t.failure_rate()));
    for a in &r.actions {
        let mut parts = Vec::new();
        if !a.statuses.is_empty() {
            let statuses: Vec<String> = a.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect();
            parts.push(format!("statuses {}", statuses.join(" ")));
        }
        if !a.failures.is_empty() {
            let failures: Vec<String> = a.failures.iter().map(|(k, n)| format!("{}×{n}", k.label())).collect();
            parts.push(format!("failures {}", failures.join(" ")));
        }
        let s = &a.summary;
        if s.connect_errors > 0 {
            parts.push(format!("connect errors {}", s.connect_errors));
        }
        if s.aborted > 0 {
            parts.push(format!("aborted {}", s.aborted));
        }
        if parts.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {}: {}", a.name, parts.join("; "));
        for (msg, n) in a.errors.iter().take(3) {
            let _ = writeln!(out, "    {n}× {msg}");
        }
    }
}

/// What the observers saw: CPU, PostgreSQL, the longest blocking chain, the target's own metrics.
fn target_side(out: &mut String, o: &ObservedSummary) {
    // No observer at all (the ad-hoc form, a target at a URL without `[observe]`): one line says so.
    if o.sources == crate::data::Sources::default() {
        let _ = writeln!(
            out,
            "target side: not measured (no observer: see [observe] in docs/scenarios.md)"
        );
        return;
    }
    let nm = |v: Option<f64>, unit: &str| v.map_or("not measured".to_owned(), |v| format!("{v:.1}{unit}"));
    // Counts read from the target's metrics are whole numbers, and print as such.
    let count = |v: Option<f64>| v.map_or("not measured".to_owned(), |v| format!("{v:.0}"));
    let _ = writeln!(
        out,
        "target CPU ({}): load mean {} max {}; post-load mean {} max {}, after {:.0}s settle {}",
        o.sources.cpu.as_deref().unwrap_or("no source"),
        nm(o.cpu_load_mean_pct, "%"),
        nm(o.cpu_load_max_pct, "%"),
        nm(o.cpu_post_load_mean_pct, "%"),
        nm(o.cpu_post_load_max_pct, "%"),
        o.settle_s,
        nm(o.cpu_post_load_settled_mean_pct, "%"),
    );
    let _ = writeln!(
        out,
        "blocked queries (PostgreSQL): max {}, mean {}; longest lock wait {}; idle in transaction max {}",
        o.blocked_queries_max.map_or("not measured".into(), |v| v.to_string()),
        nm(o.blocked_queries_mean, ""),
        nm(o.longest_lock_wait_s, "s"),
        o.idle_in_tx_max.map_or("not measured".into(), |v| v.to_string()),
    );
    if o.sources.pgbouncer.is_some() {
        let _ = writeln!(
            out,
            "PgBouncer pools: clients waiting for a server connection max {}, mean {}; longest wait {}",
            o.pgbouncer_waiting_max.map_or("not measured".into(), |v| v.to_string()),
            nm(o.pgbouncer_waiting_mean, ""),
            nm(o.pgbouncer_longest_wait_s, "s"),
        );
    }
    if let Some(chain) = o.blocking_chains.first() {
        let _ = writeln!(out, "longest blocking chain ({} backends):", chain.len());
        for (i, link) in chain.iter().enumerate() {
            let what = if i == 0 { "waits" } else { "blocks" };
            let _ = writeln!(
                out,
                "  pid {} {what} ({:.1}s): {}",
                link.pid,
                link.age_s,
                link.query.replace('\n', " ")
            );
        }
    }
    let _ = writeln!(
        out,
        "target metrics: lock conflicts {}, MCP sessions (SSE and Streamable HTTP) active max {} / at the end {}{}",
        count(o.lock_conflicts),
        count(o.sse_sessions_active_max),
        count(o.sse_sessions_active_end),
        if o.sse_session_ends.is_empty() {
            String::new()
        } else {
            let ends: Vec<String> = o.sse_session_ends.iter().map(|(k, v)| format!("{k} {v:.0}")).collect();
            format!("; ends: {}", ends.join(", "))
        }
    );
}

/// The ad-hoc form's `--json`: the run's headline figures in one object (its schema is
/// `schemas/summary.schema.json`, checked in tests). A figure not measured is null, never 0.
pub fn json_summary(r: &Results, path: &std::path::Path) -> serde_json::Value {
    let t = &r.totals;
    let mut statuses = std::collections::BTreeMap::new();
    let mut failures = std::collections::BTreeMap::new();
    for a in &r.actions {
        for (status, n) in &a.statuses {
            *statuses.entry(status.to_string()).or_insert(0u64) += n;
        }
        for (kind, n) in &a.failures {
            *failures.entry(kind.label()).or_insert(0u64) += n;
        }
    }
    serde_json::json!({
        "scenario": r.scenario.name,
        "description": r.scenario.spec.description,
        "target": r.target.url,
        "complete": r.complete,
        "load_seconds": r.load.seconds,
        "requests": t.count,
        "ok": t.ok,
        "expected": t.expected,
        "failed": t.failed,
        "success_rate": (t.count > 0).then(|| (t.ok + t.expected) as f64 / t.count as f64),
        "requests_per_second": t.rps,
        "latency_ms": {
            "mean": t.mean_ms, "p50": t.p50_ms, "p90": t.p90_ms, "p95": t.p95_ms, "p99": t.p99_ms, "max": t.max_ms,
        },
        "statuses": statuses,
        "failures": failures,
        "aborted": t.aborted,
        "connect_errors": t.connect_errors,
        "dropped": r.load.dropped,
        "thresholds": r.thresholds.iter().map(|j| serde_json::json!({
            "scope": j.scope, "threshold": j.threshold, "verdict": j.verdict, "value": j.value,
        })).collect::<Vec<_>>(),
        "results_file": path.display().to_string(),
    })
}
