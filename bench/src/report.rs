//! The bench's results: `results/bench/<date>.json` and the Markdown tables docs/bench.md carries —
//! what was measured, then (`goals`) how that compares with what the bench is held to.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::cores::{self, Split};
use crate::generator::{CostRow, GeneratorRow, Ratio};
use crate::mixed::MixedRow;
use crate::sections::{SessionRow, StreamRow, TargetRow};

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
    /// Plain HTTP, per target.
    pub ratios: Vec<Ratio>,
    /// https against nginx: keep-alive per concurrency, and new connections (each request its own
    /// TLS connection).
    #[serde(default)]
    pub tls_ratios: Vec<Ratio>,
    /// System calls and context switches per request (`perf stat`).
    #[serde(default)]
    pub syscalls: Vec<CostRow>,
    /// The generator rows' cores: the targets on one half, each tool on the other (absent: anywhere,
    /// as in files written before the split).
    #[serde(default)]
    pub cores: Option<Split>,
    /// Idle streams of both transports (`sse` in files written before Streamable HTTP).
    #[serde(alias = "sse")]
    pub streams: Vec<StreamRow>,
    #[serde(default)]
    pub sessions: Vec<SessionRow>,
    pub targets: Vec<TargetRow>,
    #[serde(default)]
    pub mixed: Option<MixedRow>,
}

pub(crate) fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("not measured".into(), f)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1048576.0)
}

/// A Markdown table: `head`'s columns, aligned as `align` says per column (`l` left, `r` right).
pub(crate) fn table(out: &mut String, head: &[&str], align: &str, rows: impl IntoIterator<Item = Vec<String>>) {
    let _ = writeln!(out, "| {} |", head.join(" | "));
    let rule: Vec<&str> = align.chars().map(|a| if a == 'r' { "---:" } else { "---" }).collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
}

pub fn markdown(b: &BenchResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Bench of {} ({} build, {} cores, {} s per run, {} rounds, medians).\n",
        b.date, b.environment.build, b.environment.cores, b.duration_s, b.rounds
    );
    crate::goals::table(b, &mut out);
    out.push('\n');
    generator_tables(b, &mut out);
    streams_and_sessions(b, &mut out);
    if !b.targets.is_empty() {
        out.push('\n');
        table(
            &mut out,
            &[
                "target",
                "endpoint",
                "connections",
                "requests/s",
                "p99",
                "failures",
                "target CPU per request",
                "statements per request",
            ],
            "llrrrrrr",
            b.targets.iter().map(|t| {
                vec![
                    t.target.clone(),
                    t.endpoint.clone(),
                    t.connections.to_string(),
                    format!("{:.0}", t.rps),
                    opt(t.p99_ms, |v| format!("{v:.1} ms")),
                    t.failures.to_string(),
                    opt(t.cpu_per_request_s, |v| format!("{:.0} µs", v * 1e6)),
                    t.statements_per_request.map_or("-".into(), |v| format!("{v:.1}")),
                ]
            }),
        );
    }
    if let Some(m) = &b.mixed {
        out.push('\n');
        table(
            &mut out,
            &[
                "mixed-4000",
                "users",
                "streams open at the peak",
                "requests",
                "failure rate",
                "generator CPU s",
                "generator peak RSS",
            ],
            "lrrrrrr",
            [vec![
                "stampede".to_owned(),
                format!("{:.0}", m.users),
                m.peak_streams_open.to_string(),
                m.requests.to_string(),
                format!("{:.3} %", m.failure_rate * 100.0),
                opt(m.generator_cpu_s, |v| format!("{v:.1}")),
                opt(m.peak_rss_bytes.map(|b| b as f64), mib),
            ]],
        );
    }
    if !b.peers.is_empty() {
        out.push('\n');
        for (name, what) in &b.peers {
            let _ = writeln!(out, "- {name}: {what}");
        }
    }
    out
}

fn per_request_us(seconds: f64, requests: u64) -> String {
    format!("{:.2}", seconds * 1e6 / requests.max(1) as f64)
}

fn ratio_rows(ratios: &[Ratio]) -> impl Iterator<Item = Vec<String>> + '_ {
    ratios.iter().map(|r| {
        vec![
            r.target.clone(),
            r.connections.to_string(),
            opt(r.vs_oha, |v| format!("{v:.2}×")),
            opt(r.vs_wrk, |v| format!("{v:.2}×")),
        ]
    })
}

fn generator_tables(b: &BenchResults, out: &mut String) {
    if let Some(split) = &b.cores {
        let _ = writeln!(
            out,
            "The targets ran on cores {}, each tool on cores {} with a thread on each (wrk `-t{n}`, oha `--worker-threads {n}`, stampede `--threads {n}`).\n",
            cores::describe(&split.target),
            cores::describe(&split.generator),
            n = split.generator.len()
        );
    }
    table(
        out,
        &[
            "target",
            "connections",
            "tool",
            "requests/s",
            "p50",
            "p99",
            "CPU µs per request: user",
            "kernel",
            "peak RSS",
            "target counted",
            "requests per generator CPU-second",
        ],
        "lrlrrrrrrrr",
        b.generator.iter().filter_map(|row| {
            let m = row.median.as_ref()?;
            let counted = match (m.target_requests, m.resumed_share) {
                (Some(n), Some(share)) => format!("{n} ({:.0} % resumed)", share * 100.0),
                (Some(n), None) => n.to_string(),
                (None, _) => "-".into(),
            };
            Some(vec![
                row.target.clone(),
                row.connections.to_string(),
                row.tool.label().to_owned(),
                format!("{:.0}", m.rps),
                opt(m.p50_ms, |v| format!("{v:.2} ms")),
                opt(m.p99_ms, |v| format!("{v:.2} ms")),
                per_request_us(m.user_cpu_s, m.requests),
                per_request_us(m.system_cpu_s, m.requests),
                mib(m.peak_rss_bytes as f64),
                counted,
                format!("**{:.0}**", m.requests_per_cpu_second),
            ])
        }),
    );
    let head = [
        "target",
        "connections",
        "stampede ÷ oha (requests per generator CPU-second)",
        "stampede ÷ wrk",
    ];
    out.push('\n');
    table(out, &head, "lrrr", ratio_rows(&b.ratios));
    if !b.tls_ratios.is_empty() {
        out.push('\n');
        table(out, &head, "lrrr", ratio_rows(&b.tls_ratios));
    }
    if !b.syscalls.is_empty() {
        out.push('\n');
        table(
            out,
            &[
                "target",
                "connections",
                "tool",
                "system calls per request",
                "context switches per request",
            ],
            "lrlrr",
            b.syscalls.iter().map(|c| {
                vec![
                    c.target.clone(),
                    c.connections.to_string(),
                    c.tool.label().to_owned(),
                    format!("{:.2}", c.counted.syscalls_per_request),
                    opt(c.counted.context_switches_per_request, |v| format!("{v:.3}")),
                ]
            }),
        );
    }
}

fn streams_and_sessions(b: &BenchResults, out: &mut String) {
    if !b.streams.is_empty() {
        out.push('\n');
        table(
            out,
            &[
                "idle streams",
                "transport",
                "open at once",
                "generator peak RSS",
                "per stream (slope)",
                "gateway RSS, all open",
                "gateway per stream (slope)",
                "gateway CPU per idle stream per second",
            ],
            "rlrrrrrr",
            b.streams.iter().map(|s| {
                vec![
                    s.streams.to_string(),
                    s.transport.clone(),
                    s.peak_open.to_string(),
                    mib(s.peak_rss_bytes as f64),
                    opt(s.bytes_per_stream, |v| format!("{:.1} KiB", v / 1024.0)),
                    opt(s.gateway_rss_bytes.map(|b| b as f64), mib),
                    opt(s.gateway_bytes_per_stream, |v| format!("{:.1} KiB", v / 1024.0)),
                    opt(s.gateway_cpu_per_stream_s, |v| format!("{:.2} µs", v * 1e6)),
                ]
            }),
        );
    }
    if !b.sessions.is_empty() {
        out.push('\n');
        table(
            out,
            &[
                "Streamable HTTP sessions: connections",
                "sessions/s",
                "requests/s",
                "p99",
                "failures",
                "requests per generator CPU-second",
                "same on /rpc",
            ],
            "rrrrrrr",
            b.sessions.iter().map(|s| {
                vec![
                    s.connections.to_string(),
                    format!("{:.0}", s.sessions_per_s),
                    format!("{:.0}", s.requests_per_s),
                    opt(s.p99_ms, |v| format!("{v:.1} ms")),
                    s.failures.to_string(),
                    format!("**{:.0}**", s.requests_per_cpu_second),
                    opt(s.rpc_requests_per_cpu_second, |v| format!("{v:.0}")),
                ]
            }),
        );
    }
}
