//! The bench's results: `results/bench/<date>.json` and the Markdown tables docs/bench.md carries.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::mixed::MixedRow;
use crate::sections::{GeneratorRow, Ratio, SessionRow, StreamRow, TargetRow};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResults {
    pub kind: String,
    pub date: String,
    pub environment: stampede_loadgen::host::Environment,
    pub duration_s: f64,
    pub rounds: usize,
    /// Each peer: its version line, or why it was skipped.
    pub peers: Vec<(String, String)>,
    pub generator: Vec<GeneratorRow>,
    pub ratios: Vec<Ratio>,
    /// Idle streams of both transports (`sse` in files written before Streamable HTTP).
    #[serde(alias = "sse")]
    pub streams: Vec<StreamRow>,
    #[serde(default)]
    pub sessions: Vec<SessionRow>,
    pub targets: Vec<TargetRow>,
    #[serde(default)]
    pub mixed: Option<MixedRow>,
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("not measured".into(), f)
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

fn is_rest_read(endpoint: &str) -> bool {
    endpoint.starts_with("GET /") && endpoint != "GET /"
}

/// The second round's goals (issue 18), each against what this bench measured.
fn goals(b: &BenchResults, out: &mut String) {
    let _ = writeln!(out, "| goal | measured | target | |");
    let _ = writeln!(out, "|---|---|---|---|");
    let mut row = |goal: String, measured: String, target: &str, met: Option<bool>| {
        let _ = writeln!(out, "| {goal} | {measured} | {target} | {} |", verdict(met));
    };
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
                        "≥ 25 %",
                        Some(share >= 0.25),
                    );
                }
                _ => row(
                    format!("{backend}: REST reads vs the ceiling"),
                    "not measured".into(),
                    "≥ 25 %",
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
                    "< 1 s",
                    w.p99_ms.map(|p| p < 1000.0 && w.failures == 0),
                );
            }
        }
    }
    for transport in ["SSE", "Streamable HTTP"] {
        let slope = b
            .streams
            .iter()
            .filter(|s| s.transport == transport)
            .filter_map(|s| s.bytes_per_stream)
            .max_by(f64::total_cmp);
        row(
            format!("generator per idle {transport} stream"),
            opt(slope, |v| format!("{:.1} KiB", v / 1024.0)),
            "< 10 KiB",
            slope.map(|v| v < 10.0 * 1024.0),
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
        "≤ 96 MiB",
        rss.map(|r| r <= 96 << 20),
    );
    for r in &b.ratios {
        row(
            format!(
                "requests per generator CPU-second at {} connections, ÷ wrk",
                r.connections
            ),
            opt(r.vs_wrk, |v| format!("{v:.2}×")),
            "≥ 1.1×",
            r.vs_wrk.map(|v| v >= 1.1),
        );
        row(
            format!(
                "requests per generator CPU-second at {} connections, ÷ oha",
                r.connections
            ),
            opt(r.vs_oha, |v| format!("{v:.2}×")),
            "≥ 1.5×",
            r.vs_oha.map(|v| v >= 1.5),
        );
    }
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
            "measured",
            w.cpu_per_request_s.map(|_| true),
        );
    }
}

pub fn markdown(b: &BenchResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Bench of {} ({} build, {} cores, {} s per run, {} rounds, medians).\n",
        b.date, b.environment.build, b.environment.cores, b.duration_s, b.rounds
    );
    goals(b, &mut out);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| connections | tool | requests/s | p50 | p99 | generator CPU s | peak RSS | requests per generator CPU-second |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|");
    for row in &b.generator {
        let Some(m) = &row.median else { continue };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {:.2} | {:.1} MiB | **{:.0}** |",
            row.connections,
            row.tool.label(),
            m.rps,
            opt(m.p50_ms, |v| format!("{v:.2} ms")),
            opt(m.p99_ms, |v| format!("{v:.2} ms")),
            m.cpu_seconds,
            m.peak_rss_bytes as f64 / 1048576.0,
            m.requests_per_cpu_second
        );
    }
    let _ = writeln!(
        out,
        "\n| connections | stampede ÷ oha (requests per generator CPU-second) | stampede ÷ wrk |"
    );
    let _ = writeln!(out, "|---:|---:|---:|");
    for r in &b.ratios {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            r.connections,
            opt(r.vs_oha, |v| format!("{v:.2}×")),
            opt(r.vs_wrk, |v| format!("{v:.2}×"))
        );
    }
    if !b.streams.is_empty() {
        let _ = writeln!(
            out,
            "\n| idle streams | transport | open at once | generator peak RSS | per stream (slope) |"
        );
        let _ = writeln!(out, "|---:|---|---:|---:|---:|");
        for s in &b.streams {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} MiB | {} |",
                s.streams,
                s.transport,
                s.peak_open,
                s.peak_rss_bytes as f64 / 1048576.0,
                opt(s.bytes_per_stream, |v| format!("{:.1} KiB", v / 1024.0))
            );
        }
    }
    if !b.sessions.is_empty() {
        let _ = writeln!(
            out,
            "\n| Streamable HTTP sessions: connections | sessions/s | requests/s | p99 | failures | requests per generator CPU-second | same on /rpc |"
        );
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
        for s in &b.sessions {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {} | {} | **{:.0}** | {} |",
                s.connections,
                s.sessions_per_s,
                s.requests_per_s,
                opt(s.p99_ms, |v| format!("{v:.1} ms")),
                s.failures,
                s.requests_per_cpu_second,
                opt(s.rpc_requests_per_cpu_second, |v| format!("{v:.0}"))
            );
        }
    }
    if !b.targets.is_empty() {
        let _ = writeln!(
            out,
            "\n| target | endpoint | connections | requests/s | p99 | failures | target CPU per request | statements per request |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|");
        for t in &b.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {} | {} | {} |",
                t.target,
                t.endpoint,
                t.connections,
                t.rps,
                opt(t.p99_ms, |v| format!("{v:.1} ms")),
                t.failures,
                opt(t.cpu_per_request_s, |v| format!("{:.0} µs", v * 1e6)),
                t.statements_per_request.map_or("-".into(), |v| format!("{v:.1}"))
            );
        }
    }
    if let Some(m) = &b.mixed {
        let _ = writeln!(
            out,
            "\n| mixed-4000 | users | streams open at the peak | requests | failure rate | generator CPU s | generator peak RSS |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| stampede | {:.0} | {} | {} | {:.3} % | {} | {} |",
            m.users,
            m.peak_streams_open,
            m.requests,
            m.failure_rate * 100.0,
            opt(m.generator_cpu_s, |v| format!("{v:.1}")),
            opt(m.peak_rss_bytes.map(|b| b as f64), |v| format!(
                "{:.1} MiB",
                v / 1048576.0
            ))
        );
    }
    if !b.peers.is_empty() {
        let _ = writeln!(out);
        for (name, what) in &b.peers {
            let _ = writeln!(out, "- {name}: {what}");
        }
    }
    out
}
