//! The bench's results: `results/bench/<date>.json` and the Markdown tables the README carries.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::sections::{GeneratorRow, Ratio, SessionRow, StreamRow, TargetRow};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResults {
    pub kind: String,
    pub date: String,
    pub environment: stampede_loadgen::environment::Environment,
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
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("not measured".into(), f)
}

pub fn markdown(b: &BenchResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Bench of {} ({} build, {} cores, {} s per run, {} rounds, medians).\n",
        b.date, b.environment.build, b.environment.cores, b.duration_s, b.rounds
    );
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
            "\n| target | endpoint | connections | requests/s | p99 | failures | target CPU per request |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
        for t in &b.targets {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {} | {} | {} |",
                t.target,
                t.endpoint,
                t.connections,
                t.rps,
                opt(t.p99_ms, |v| format!("{v:.1} ms")),
                t.failures,
                opt(t.cpu_per_request_s, |v| format!("{:.0} µs", v * 1e6))
            );
        }
    }
    if !b.peers.is_empty() {
        let _ = writeln!(out);
        for (name, what) in &b.peers {
            let _ = writeln!(out, "- {name}: {what}");
        }
    }
    out
}
