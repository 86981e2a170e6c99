//! What the bench is held to, apart from what it measures: each goal's bar as data, and the table that
//! sets the measurements against them.

use crate::report::{BenchResults, opt};

/// A goal's bar: how it reads, and whether a measured value clears it.
pub struct Bar {
    pub text: &'static str,
    pub holds: fn(f64) -> bool,
}

/// Every REST read's rate at the lowest concurrency, as a share of the hello server's.
pub const REST_READ_SHARE: Bar = Bar {
    text: "≥ 25 %",
    holds: |share| share >= 0.25,
};
/// Every REST read's p99 at the highest concurrency, without failures.
pub const REST_READ_P99_MS: Bar = Bar {
    text: "< 1 s",
    holds: |ms| ms < 1000.0,
};
/// The generator's memory per idle stream.
pub const IDLE_STREAM_BYTES: Bar = Bar {
    text: "< 10 KiB",
    holds: |bytes| bytes < 10.0 * 1024.0,
};
/// The gateway's memory per held stream.
pub const GATEWAY_STREAM_BYTES: Bar = Bar {
    text: "≤ 16 KiB",
    holds: |bytes| bytes <= 16.0 * 1024.0,
};
/// The generator's peak RSS in mixed-4000.
pub const MIXED_PEAK_RSS_BYTES: Bar = Bar {
    text: "≤ 96 MiB",
    holds: |bytes| bytes <= f64::from(96u32 << 20),
};
/// Requests per generator CPU-second, against wrk's and oha's.
pub const VS_WRK: Bar = Bar {
    text: "≥ 1.1×",
    holds: |ratio| ratio >= 1.1,
};
pub const VS_OHA: Bar = Bar {
    text: "≥ 1.5×",
    holds: |ratio| ratio >= 1.5,
};
/// The same over https (keep-alive), against wrk's.
pub const TLS_VS_WRK: Bar = Bar {
    text: "≥ 1.0×",
    holds: |ratio| ratio >= 1.0,
};
/// Every run's count against the target's own: the largest difference, in requests in flight at the
/// end (a tool stops counting those the target has already counted).
pub const COUNT_AGREES: Bar = Bar {
    text: "≤ the connections",
    holds: |connections_apart| connections_apart <= 1.0,
};
/// The stateless era's gateway CPU per request against the session era's.
pub const ERA_RATIO: Bar = Bar {
    text: "≤ 1.0×",
    holds: |ratio| ratio <= 1.0,
};
/// A figure with no bar: it is met by being measured.
pub const MEASURED: Bar = Bar {
    text: "measured",
    holds: |_| true,
};

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

fn times(ratio: Option<f64>) -> String {
    // Three places: a ratio just under its bar must not read as on it (1.099×, not 1.10×).
    opt(ratio, |v| format!("{v:.3}×"))
}

/// Per target that counts what it served: the runs' largest difference from the tool's count, in
/// connections (each may have had one request in flight when the tool stopped).
fn count_rows(b: &BenchResults, row: &mut impl Row) {
    let mut targets: Vec<&str> = Vec::new();
    for g in &b.generator {
        if g.runs.iter().any(|r| r.target_requests.is_some()) && !targets.contains(&g.target.as_str()) {
            targets.push(&g.target);
        }
    }
    for target in targets {
        let mut worst: Option<(f64, i64, u32)> = None;
        for g in b.generator.iter().filter(|g| g.target == target) {
            for r in &g.runs {
                let Some(counted) = r.target_requests else { continue };
                let apart = counted as i64 - r.requests as i64;
                let in_connections = apart.unsigned_abs() as f64 / f64::from(g.connections.max(1));
                if worst.is_none_or(|(w, _, _)| in_connections > w) {
                    worst = Some((in_connections, apart, g.connections));
                }
            }
        }
        if let Some((w, apart, connections)) = worst {
            row(
                format!("{target}: every tool's count against the target's own (stub_status)"),
                format!("largest difference {apart:+} requests (at {connections} connections)"),
                &COUNT_AGREES,
                Some(w),
            );
        }
    }
}

fn is_rest_read(endpoint: &str) -> bool {
    endpoint.starts_with("GET /") && endpoint != "GET /"
}

/// Each goal against what this bench measured, as a table of its own.
pub fn table(b: &BenchResults, out: &mut String) {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |goal: String, measured: String, bar: &Bar, value: Option<f64>| {
        rows.push(vec![
            goal,
            measured,
            bar.text.to_owned(),
            verdict(value.map(bar.holds)).to_owned(),
        ]);
    };
    rest_read_rows(b, &mut row);
    era_rows(b, &mut row);
    stream_rows(b, &mut row);
    generator_rows(b, &mut row);
    crate::report::table(out, &["goal", "measured", "target", ""], "llll", rows);
}

/// A row of the goals table: the goal, what was measured, its bar, the value the bar judges.
trait Row: FnMut(String, String, &Bar, Option<f64>) {}
impl<F: FnMut(String, String, &Bar, Option<f64>)> Row for F {}

/// Per gateway backend: every REST read's share of the hello ceiling, and its p99 at the most.
fn rest_read_rows(b: &BenchResults, row: &mut impl Row) {
    let backends: Vec<&str> = b
        .targets
        .iter()
        .filter(|t| t.target.starts_with("gateway"))
        .map(|t| t.target.as_str())
        .fold(Vec::new(), |mut v, t| {
            if !v.contains(&t) {
                v.push(t);
            }
            v
        });
    for backend in backends {
        let reads = || {
            b.targets
                .iter()
                .filter(move |t| t.target == backend && is_rest_read(&t.endpoint))
        };
        if let Some(least) = reads().map(|t| t.connections).min() {
            let ceiling = b
                .targets
                .iter()
                .find(|t| t.target.starts_with("hello") && t.connections == least);
            let worst = reads()
                .filter(|t| t.connections == least)
                .min_by(|a, b| a.rps.total_cmp(&b.rps));
            match (ceiling, worst) {
                (Some(c), Some(w)) => {
                    let share = w.rps / c.rps;
                    row(
                        format!("{backend}: every REST read at {least} connections, share of the hello ceiling"),
                        format!(
                            "{:.0} % at the lowest ({}: {:.0} of {:.0} req/s)",
                            share * 100.0,
                            w.endpoint,
                            w.rps,
                            c.rps
                        ),
                        &REST_READ_SHARE,
                        Some(share),
                    );
                }
                _ => row(
                    format!("{backend}: REST reads vs the ceiling"),
                    "not measured".into(),
                    &REST_READ_SHARE,
                    None,
                ),
            }
        }
        if let Some(most) = reads().map(|t| t.connections).max() {
            let worst = reads().filter(|t| t.connections == most).max_by(|a, b| {
                a.p99_ms
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.p99_ms.unwrap_or(f64::INFINITY))
            });
            if let Some(w) = worst {
                row(
                    format!("{backend}: p99 of every REST read at {most} connections"),
                    format!(
                        "{} at the highest ({}), {} failed",
                        opt(w.p99_ms, |v| format!("{v:.0} ms")),
                        w.endpoint,
                        w.failures
                    ),
                    &REST_READ_P99_MS,
                    // A failed read is not a fast one.
                    w.p99_ms.map(|p| if w.failures == 0 { p } else { f64::INFINITY }),
                );
            }
        }
    }
}

/// Per method, the stateless era's gateway CPU per request against the session era's.
fn era_rows(b: &BenchResults, row: &mut impl Row) {
    let cpu = |endpoint: &str| {
        b.targets
            .iter()
            .find(|t| t.endpoint == endpoint)
            .and_then(|t| t.cpu_per_request_s.map(|c| (c, t.connections)))
    };
    for pair in crate::gateway::ERA_ENDPOINTS.chunks(2) {
        let method = pair[0].rsplit(' ').next().unwrap_or(pair[0]);
        let (session, stateless) = (cpu(pair[0]), cpu(pair[1]));
        let ratio = session.zip(stateless).map(|((a, _), (b, _))| b / a);
        row(
            format!(
                "gateway CPU per {method}, 2026-07-28 ÷ 2025-06-18 (at {} connections)",
                session.map_or(0, |(_, c)| c)
            ),
            match (session, stateless, ratio) {
                (Some((a, _)), Some((b, _)), Some(r)) => {
                    format!("{:.1} µs ÷ {:.1} µs = {r:.3}×", b * 1e6, a * 1e6)
                }
                _ => "not measured".into(),
            },
            &ERA_RATIO,
            ratio,
        );
    }
}

/// The generator's memory per idle stream, the gateway's per held stream, and mixed-4000's peak.
fn stream_rows(b: &BenchResults, row: &mut impl Row) {
    for transport in ["SSE", "Streamable HTTP", "subscriptions/listen"] {
        let slope = b
            .streams
            .iter()
            .filter(|s| s.transport == transport)
            .filter_map(|s| s.bytes_per_stream)
            .max_by(f64::total_cmp);
        row(
            format!("generator per idle {transport} stream"),
            opt(slope, |v| format!("{:.1} KiB", v / 1024.0)),
            &IDLE_STREAM_BYTES,
            slope,
        );
    }
    for transport in ["SSE", "Streamable HTTP", "subscriptions/listen"] {
        let of = || b.streams.iter().filter(move |s| s.transport == transport);
        if of().next().is_none() {
            continue;
        }
        let slope = of().filter_map(|s| s.gateway_bytes_per_stream).max_by(f64::total_cmp);
        row(
            format!("gateway per held {transport} stream"),
            opt(slope, |v| format!("{:.1} KiB", v / 1024.0)),
            &GATEWAY_STREAM_BYTES,
            slope,
        );
        let cpu = of()
            .max_by_key(|s| s.streams)
            .and_then(|s| s.gateway_cpu_per_stream_s.map(|c| (s.streams, c)));
        row(
            format!("gateway CPU per held idle {transport} stream per second"),
            opt(cpu.map(|(_, c)| c), |v| {
                format!("{:.2} µs (at {} streams)", v * 1e6, cpu.map_or(0, |(n, _)| n))
            }),
            &MEASURED,
            cpu.map(|(_, c)| c),
        );
    }
    let rss = b.mixed.as_ref().and_then(|m| m.peak_rss_bytes);
    row(
        "generator peak RSS in mixed-4000".into(),
        match &b.mixed {
            Some(m) => format!(
                "{} ({:.0} users, {} streams open at the peak)",
                opt(rss.map(|r| r as f64), |v| format!("{:.0} MiB", v / 1048576.0)),
                m.users,
                m.peak_streams_open
            ),
            None => "not measured".into(),
        },
        &MIXED_PEAK_RSS_BYTES,
        rss.map(|r| r as f64),
    );
}

/// How the tools ran, for the generator's goals: each at the same thread count on cores of its own
/// (`cores`), or anywhere (files written before the split).
fn each_tool(b: &BenchResults) -> String {
    match b.cores.as_ref().map(|s| s.generator.len()) {
        Some(1) => ", every tool on 1 thread".into(),
        Some(n) => format!(", every tool on {n} threads"),
        None => String::new(),
    }
}

/// Requests per generator CPU-second against the peers, the counts against the target's, and the
/// gateway's CPU per write.
fn generator_rows(b: &BenchResults, row: &mut impl Row) {
    let each = each_tool(b);
    for r in &b.ratios {
        let at = format!("{}, {} connections{each}", r.target, r.connections);
        row(
            format!("{at}: requests per generator CPU-second ÷ wrk"),
            times(r.vs_wrk),
            &VS_WRK,
            r.vs_wrk,
        );
        row(format!("{at}: ÷ oha"), times(r.vs_oha), &VS_OHA, r.vs_oha);
    }
    for r in &b.tls_ratios {
        let at = format!("{}, {} connections{each}", r.target, r.connections);
        // New connections are measured against wrk's; no bar was set for them.
        let (wrk_bar, oha_bar) = if r.target.contains("new connections") {
            (&MEASURED, &MEASURED)
        } else {
            (&TLS_VS_WRK, &VS_OHA)
        };
        row(
            format!("{at}: requests per generator CPU-second ÷ wrk"),
            times(r.vs_wrk),
            wrk_bar,
            r.vs_wrk,
        );
        row(format!("{at}: ÷ oha"), times(r.vs_oha), oha_bar, r.vs_oha);
    }
    count_rows(b, row);
    for w in b.targets.iter().filter(|t| t.endpoint.starts_with("POST")) {
        row(
            format!(
                "{}: {} at {} connections, CPU per request",
                w.target, w.endpoint, w.connections
            ),
            format!(
                "{}, {} statements per request",
                opt(w.cpu_per_request_s, |v| format!("{:.0} µs", v * 1e6)),
                opt(w.statements_per_request, |v| format!("{v:.1}"))
            ),
            &MEASURED,
            w.cpu_per_request_s,
        );
    }
}
