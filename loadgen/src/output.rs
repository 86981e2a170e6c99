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
    // A run without a post-load window is over when its load is, not "post-load".
    let phase = if s.phase == crate::data::Phase::PostLoad && s.post_load_s == 0.0 {
        "done"
    } else {
        s.phase.label()
    };
    // A count of requests shows how many are done, not a countdown of its time cap.
    let started = t.count + t.aborted + t.connect_errors;
    let (at, done) = match s.iterations {
        Some(n) => (format!("{started}/{n} req"), started as f64 / n.max(1) as f64),
        None => (
            format!("{:>5.0}s/{:.0}s", s.elapsed_s, total),
            if total > 0.0 { s.elapsed_s / total } else { 0.0 },
        ),
    };
    let mut line = format!(
        "{at} {:<9} {:>8.0} req/s  p99 {:>7}  fail {:>6}  {}  streams {}  target cpu {cpu} blocked {blocked}",
        phase,
        rps,
        ms(p99),
        rate(t.failure_rate()),
        users,
        s.sse.open + s.mcp.open
    );
    if width > 0 {
        let bar_len = 20usize;
        let filled = (done.clamp(0.0, 1.0) * bar_len as f64) as usize;
        let bar = format!("[{}{}] ", "#".repeat(filled), ".".repeat(bar_len - filled));
        line.insert_str(0, &bar);
        line.truncate(width.saturating_sub(1));
    }
    line
}

/// What the progress says when the load starts: how it will end.
fn started_line(s: &Snapshot) -> String {
    let window = if s.post_load_s > 0.0 {
        format!(", a post-load window of {:.0}s included", s.post_load_s)
    } else {
        String::new()
    };
    match s.iterations {
        Some(n) => format!(
            "{}: load started: {n} requests, then the end (at most {:.0}s{window})",
            s.scenario, s.remaining_s
        ),
        None => format!("{}: load started, {:.0}s to go{window}", s.scenario, s.remaining_s),
    }
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
            let _ = writeln!(std::io::stderr(), "{}", started_line(&snap));
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
                "{transport}: {} opened, peak {} open at once; ended by the client {} ({} abrupt, {} with RST, {} gracefully, {} deleted{}), by the server {}, by an error {}; {} re-initialized after \"session not found\"{}",
                s.opened,
                s.peak_open,
                s.closed_by_client(),
                s.closed_abrupt,
                s.closed_rst,
                s.closed_graceful,
                s.closed_delete,
                if s.closed_undeletable > 0 {
                    format!(", {} left: the server offers no DELETE (405)", s.closed_undeletable)
                } else {
                    String::new()
                },
                s.server_closed,
                s.errored,
                s.reinitialized,
                recovery(s)
            );
            if s.stateless + s.fell_back > 0 {
                let _ = writeln!(
                    out,
                    "  protocol eras: {} stateless (2026-07-28), {} session era; {} fell back to initialize after server/discover",
                    s.stateless,
                    s.opened - s.stateless.min(s.opened),
                    s.fell_back
                );
            }
            if s.mrtr_rounds + s.cache_hinted + s.cache_hits > 0 {
                let ttl = s.ttl_ms_min.map_or_else(|| "none".to_owned(), |t| format!("{t} ms"));
                let _ = writeln!(
                    out,
                    "  stateless results: {} input rounds (MRTR); {} with caching hints ({} private), shortest ttlMs {ttl}; {} answered from the client cache",
                    s.mrtr_rounds, s.cache_hinted, s.cache_private, s.cache_hits
                );
            }
            if s.stream_messages > 0 {
                let _ = writeln!(out, "  messages on held streams: {}", s.stream_messages);
            }
            if s.listen_not_offered > 0 {
                let _ = writeln!(
                    out,
                    "  listen streams the server offers none of (GET 405, or subscriptions/listen 404) ×{}; those sessions were held without one",
                    s.listen_not_offered
                );
            }
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
        let value = threshold_value(j);
        let _ = writeln!(
            out,
            "threshold {}: {} — {} (value {value})",
            j.scope, j.threshold, j.verdict
        );
    }
    let g = &r.generator;
    let _ = writeln!(
        out,
        "generator: CPU {}, requests per CPU second {}, peak RSS {}",
        g.cpu_seconds.map_or("not measured".into(), |c| format!("{c:.1} s")),
        g.requests_per_cpu_second
            .filter(|_| r.totals.count > 0)
            .map_or("not measured".into(), |r| format!("{r:.0}")),
        g.peak_rss_bytes
            .map_or("not measured".into(), |b| format!("{} MiB", b / (1024 * 1024)))
    );
    out
}

/// Milliseconds to the microsecond, as oha shows them.
fn fine_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3} ms"))
}

/// The ad-hoc form's summary, to oha's level: the table, then the whole run's latency spread (fastest,
/// mean, slowest), bytes and transfer rate, a latency histogram, percentiles and the statuses.
pub fn adhoc_summary(r: &Results) -> String {
    let mut out = summary(r);
    let t = &r.totals;
    let seconds = r.load.seconds;
    let bytes = |b: f64| {
        if b >= 1024.0 * 1024.0 {
            format!("{:.2} MiB", b / (1024.0 * 1024.0))
        } else if b >= 1024.0 {
            format!("{:.2} KiB", b / 1024.0)
        } else {
            format!("{b:.0} B")
        }
    };
    let _ = writeln!(out, "\nSummary:");
    let _ = writeln!(out, "  Success rate:  {}", rate(t.failure_rate().map(|f| 1.0 - f)));
    let _ = writeln!(out, "  Total:         {seconds:.4} s");
    for (what, v) in [("Fastest", t.min_ms), ("Average", t.mean_ms), ("Slowest", t.max_ms)] {
        let _ = writeln!(out, "  {what}:{:width$}{}", "", fine_ms(v), width = 14 - what.len());
    }
    let _ = writeln!(out, "  Requests/sec:  {:.1}", t.rps);
    match t.bytes_read {
        Some(b) if t.count > 0 => {
            let _ = writeln!(out, "  Total data:    {}", bytes(b as f64));
            let _ = writeln!(out, "  Size/request:  {}", bytes(b as f64 / t.count as f64));
            if seconds > 0.0 {
                let _ = writeln!(out, "  Size/sec:      {}/s", bytes(b as f64 / seconds));
            }
        }
        _ => {
            let _ = writeln!(out, "  Total data:    not measured");
        }
    }
    if let Some(h) = whole_histogram(r) {
        latency_histogram(&mut out, &h);
    }
    let mut statuses = std::collections::BTreeMap::new();
    for a in &r.actions {
        for (status, n) in &a.statuses {
            *statuses.entry(*status).or_insert(0u64) += n;
        }
    }
    if !statuses.is_empty() {
        let _ = writeln!(out, "\nStatus code distribution:");
        for (status, n) in statuses {
            let _ = writeln!(out, "  [{status}] {n} responses");
        }
    }
    out
}

/// Every action's latencies added into one histogram (µs); `None` without samples.
fn whole_histogram(r: &Results) -> Option<hdrhistogram::Histogram<u64>> {
    let mut all: Option<hdrhistogram::Histogram<u64>> = None;
    for h in r
        .actions
        .iter()
        .filter_map(|a| crate::results::decode_histogram(&a.histogram).ok())
    {
        match &mut all {
            Some(sum) => {
                let _ = sum.add(&h);
            }
            None => all = Some(h),
        }
    }
    all.filter(|h| !h.is_empty())
}

/// oha's response-time histogram (eleven even steps from the fastest to the slowest) and its
/// percentiles.
fn latency_histogram(out: &mut String, h: &hdrhistogram::Histogram<u64>) {
    const STEPS: usize = 11;
    const BAR: u64 = 32;
    let (lo, hi) = (h.min(), h.max());
    let step = (hi - lo) as f64 / (STEPS - 1) as f64;
    let mut counts = [0u64; STEPS];
    for v in h.iter_recorded() {
        let at = h.median_equivalent(v.value_iterated_to()).clamp(lo, hi);
        let i = if step > 0.0 {
            (((at - lo) as f64 / step).ceil() as usize).min(STEPS - 1)
        } else {
            0
        };
        counts[i] += v.count_at_value();
    }
    let most = counts.iter().copied().max().unwrap_or(1).max(1);
    let _ = writeln!(out, "\nResponse time histogram:");
    for (i, n) in counts.iter().enumerate() {
        let edge = (lo as f64 + step * i as f64) / 1000.0;
        let bar = "■".repeat((n * BAR / most) as usize);
        let _ = writeln!(out, "  {:>10} [{n}] |{bar}", fine_ms(Some(edge)));
    }
    let _ = writeln!(out, "\nResponse time distribution:");
    for p in [10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99] {
        let v = h.value_at_quantile(p / 100.0) as f64 / 1000.0;
        let _ = writeln!(out, "  {p:.2}% in {}", fine_ms(Some(v)));
    }
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
        if s.expected > 0 {
            parts.push(format!("expected {}", why_expected(r, a)));
        }
        if s.connect_errors > 0 {
            parts.push(format!("connect errors {}", s.connect_errors));
        }
        if s.aborted > 0 {
            parts.push(format!("aborted {}", s.aborted));
        }
        if !a.served_by.is_empty() {
            let replicas: Vec<String> = a.served_by.iter().map(|(r, n)| format!("{r}×{n}")).collect();
            parts.push(format!("served by {}", crate::stdio::printable(&replicas.join(" "))));
        }
        if parts.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  {}: {}", a.name, parts.join("; "));
        for (msg, n) in a.errors.iter().take(3) {
            let _ = writeln!(out, "    {n}× {}", crate::stdio::printable(msg));
        }
    }
}

/// Why answers were counted expected rather than failed: the statuses and JSON-RPC errors the
/// action declared (`expected`, `expected_errors`), with their counts.
fn why_expected(r: &Results, a: &crate::results::ActionTotals) -> String {
    // Slots are the actions in order, then each one's series named `<action> <what>`.
    let declared = r.scenario.spec.actions.iter().zip(&r.actions).find_map(|(spec, main)| {
        (main.name == a.name || a.name.starts_with(&format!("{} ", main.name))).then_some(spec)
    });
    let mut why = Vec::new();
    if let Some(spec) = declared {
        let statuses: Vec<String> = (spec.expected.iter().flatten())
            .filter_map(|s| a.statuses.get(s).map(|n| format!("{s}×{n}")))
            .collect();
        if !statuses.is_empty() {
            why.push(format!("{}, declared in expected", statuses.join(" ")));
        }
        let errors: Vec<String> = (spec.expected_errors.iter().flatten())
            .filter_map(|c| a.rpc_errors.get(c).map(|n| format!("{c}×{n}")))
            .collect();
        if !errors.is_empty() {
            why.push(format!("{}, declared in expected_errors", errors.join(" ")));
        }
    }
    if why.is_empty() {
        a.summary.expected.to_string()
    } else {
        format!("{} ({})", a.summary.expected, why.join("; "))
    }
}

/// A judged threshold's value: bytes in MiB, the other kinds as they always were.
fn threshold_value(j: &crate::data::Judged) -> String {
    use crate::data::MetricKind::{Bytes, BytesPerMinute};
    let metric = crate::data::threshold::parse(&j.threshold).ok().map(|t| t.metric);
    let kind = metric.as_deref().and_then(crate::data::metrics::metric_kind);
    match (j.value, metric) {
        (None, _) => "not measured".to_owned(),
        (Some(v), Some(metric)) if matches!(kind, Some(Bytes | BytesPerMinute)) => {
            crate::gate::check::figure(&metric, v)
        }
        (Some(v), _) => format!("{v:.4}"),
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
    if o.sources.resources.is_some() {
        let _ = writeln!(out, "target resources: {}", resources(&o.resources));
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
        count(o.mcp_sessions_active_max),
        count(o.mcp_sessions_active_end),
        if o.mcp_session_ends.is_empty() {
            String::new()
        } else {
            let ends: Vec<String> = o.mcp_session_ends.iter().map(|(k, v)| format!("{k} {v:.0}")).collect();
            format!("; ends: {}", ends.join(", "))
        }
    );
}

/// The target's memory, files, threads and sockets: before the load → its most during it → settled
/// after it, `not measured` where a figure is missing, one word for a group missing whole.
fn resources(r: &crate::data::ResourcesSummary) -> String {
    use crate::format::{mib, num};
    let group = |name: &str, figures: [Option<String>; 3], tail: String| -> String {
        if figures.iter().all(Option::is_none) {
            return format!("{name} not measured");
        }
        let [a, b, c] = figures.map(|f| f.unwrap_or_else(|| "not measured".into()));
        format!("{name} {a} → {b} → {c}{tail}")
    };
    let count = |v: Option<u32>| v.map(|v| v.to_string());
    let mean = |v: Option<f64>| v.map(|v| num(Some(v)));
    let bytes = |v: Option<u64>| v.map(|v| mib(v as f64));
    let rss = group(
        "RSS",
        [
            bytes(r.target_rss_before_bytes).map(|b| format!("{b} MiB")),
            bytes(r.target_rss_load_max_bytes).map(|b| format!("max {b}")),
            bytes(r.target_rss_settled_bytes).map(|b| format!("settled {b}")),
        ],
        r.target_rss_slope_bytes_per_min.map_or_else(String::new, |s| {
            format!(" (slope {:+.1} MiB/min)", s / (1024.0 * 1024.0))
        }),
    );
    let mut fds_tail = Vec::new();
    fds_tail.extend(r.target_fds_settled_growth_pct.map(|g| format!("{g:+.1}%")));
    fds_tail.extend(r.target_fds_slope_per_min.map(|s| format!("slope {s:+.1}/min")));
    let fds = group(
        "fds",
        [
            count(r.target_fds_before),
            count(r.target_fds_load_max),
            mean(r.target_fds_settled),
        ],
        if fds_tail.is_empty() {
            String::new()
        } else {
            format!(" ({})", fds_tail.join(", "))
        },
    );
    let threads = group(
        "threads",
        [
            count(r.target_threads_before),
            count(r.target_threads_load_max),
            mean(r.target_threads_settled),
        ],
        String::new(),
    );
    let close_wait = group(
        "CLOSE_WAIT",
        [
            count(r.close_wait_before),
            count(r.close_wait_load_max),
            mean(r.close_wait_settled),
        ],
        String::new(),
    );
    // No reading before the load is kept for these two: the most during it → settled.
    let pair = |name: &str, max: Option<u32>, settled: Option<f64>| match (max, settled) {
        (None, None) => format!("{name} not measured"),
        _ => format!(
            "{name} max {} → {}",
            count(max).unwrap_or_else(|| "not measured".into()),
            mean(settled).unwrap_or_else(|| "not measured".into())
        ),
    };
    format!(
        "{rss}; {fds}; {threads}; {close_wait}; {}; {}",
        pair("ESTABLISHED", r.established_load_max, r.established_settled),
        pair("TIME_WAIT", r.time_wait_load_max, r.time_wait_settled)
    )
}

/// The ad-hoc form's `--json`: the run's headline figures in one object (its schema is
/// `schemas/summary.schema.json`, checked in tests). A figure not measured is null, never 0.
pub fn json_summary(r: &Results, path: Option<&std::path::Path>) -> serde_json::Value {
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
        "success_rate": t.failure_rate().map(|f| 1.0 - f),
        "requests_per_second": t.rps,
        "latency_ms": {
            "min": t.min_ms, "mean": t.mean_ms, "p50": t.p50_ms, "p90": t.p90_ms, "p95": t.p95_ms, "p99": t.p99_ms, "max": t.max_ms,
        },
        "statuses": statuses,
        "failures": failures,
        "aborted": t.aborted,
        "connect_errors": t.connect_errors,
        "bytes_read": t.bytes_read,
        "bytes_per_second": t.bytes_read.filter(|_| r.load.seconds > 0.0).map(|b| b as f64 / r.load.seconds),
        "dropped": r.load.dropped,
        "thresholds": r.thresholds.iter().map(|j| serde_json::json!({
            "scope": j.scope, "threshold": j.threshold, "verdict": j.verdict, "value": j.value,
        })).collect::<Vec<_>>(),
        "results_file": path.map(|p| p.display().to_string()),
    })
}

/// How re-initialized sessions fared: recovered, and the mean time those took to recover.
fn recovery(s: &crate::data::StreamFigures) -> String {
    match (s.reinitialized, s.recovered) {
        (0, _) => String::new(),
        (_, 0) => " (none recovered)".to_owned(),
        (_, n) => format!(
            " ({n} recovered, in {:.0} ms on average)",
            s.recovery_ms as f64 / n as f64
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::data::ResourcesSummary;

    #[test]
    fn the_resources_line_reads_before_max_settled_and_says_what_was_not_measured() {
        const MIB: u64 = 1024 * 1024;
        let r = ResourcesSummary {
            target_rss_before_bytes: Some(21 * MIB + MIB / 2),
            target_rss_load_max_bytes: Some(130 * MIB),
            target_rss_settled_bytes: Some(40 * MIB),
            target_rss_slope_bytes_per_min: Some(0.2 * MIB as f64),
            target_fds_before: Some(12),
            target_fds_load_max: Some(240),
            target_fds_settled: Some(12.0),
            target_fds_settled_growth_pct: Some(0.0),
            close_wait_before: Some(0),
            close_wait_load_max: Some(14),
            close_wait_settled: None,
            ..ResourcesSummary::default()
        };
        assert_eq!(
            super::resources(&r),
            "RSS 21.5 MiB → max 130.0 → settled 40.0 (slope +0.2 MiB/min); fds 12 → 240 → 12 (+0.0%); \
             threads not measured; CLOSE_WAIT 0 → 14 → not measured; ESTABLISHED not measured; TIME_WAIT not measured"
        );
    }
}
