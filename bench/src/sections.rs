//! The three parts of the bench. Every generator run is a separate process measured by `wait4`; the
//! targets are started by the bench, never by a generator, so no target's CPU or memory is counted as
//! the generator's.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::proc::{Server, measure};
use crate::tools::{Load, Tool, ToolRun, Tools};
use crate::{Settings, median};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratorRow {
    pub connections: u32,
    pub tool: Tool,
    pub runs: Vec<ToolRun>,
    /// Field by field medians over the rounds.
    pub median: Option<ToolRun>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratio {
    pub connections: u32,
    /// stampede (closed) requests per generator CPU-second ÷ the peer's, medians of the same run.
    pub vs_oha: Option<f64>,
    pub vs_wrk: Option<f64>,
}

fn median_run(runs: &[ToolRun]) -> Option<ToolRun> {
    let m = |f: &dyn Fn(&ToolRun) -> f64| median(runs.iter().map(f).collect());
    let opt = |f: &dyn Fn(&ToolRun) -> Option<f64>| median(runs.iter().filter_map(f).collect());
    Some(ToolRun {
        requests: m(&|r| r.requests as f64)? as u64,
        errors: m(&|r| r.errors as f64)? as u64,
        rps: m(&|r| r.rps)?,
        p50_ms: opt(&|r| r.p50_ms),
        p99_ms: opt(&|r| r.p99_ms),
        cpu_seconds: m(&|r| r.cpu_seconds)?,
        peak_rss_bytes: m(&|r| r.peak_rss_bytes as f64)? as u64,
        requests_per_cpu_second: m(&|r| r.requests_per_cpu_second)?,
    })
}

/// Each tool against the hello server at each concurrency, in alternating order over the rounds
/// (A B A B: drift of a noisy machine falls on every tool alike).
pub fn generator(
    settings: &Settings,
    tools: &Tools,
    hello: &Server,
    say: &dyn Fn(String),
) -> (Vec<GeneratorRow>, Vec<Ratio>) {
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let url = format!("{}/", hello.url);
    for &connections in &settings.connections {
        let order = [Tool::StampedeClosed, Tool::Oha, Tool::StampedeOpen, Tool::Wrk];
        let mut runs: Vec<(Tool, Vec<ToolRun>)> = order.iter().map(|t| (*t, Vec::new())).collect();
        let mut rate = 0.0;
        for round in 0..settings.rounds {
            let mut this_round = order.to_vec();
            if round % 2 == 1 {
                this_round.reverse();
            }
            for tool in this_round {
                if !tools.has(tool) {
                    continue;
                }
                if tool == Tool::StampedeOpen && rate == 0.0 {
                    // The open model's fixed rate: 3/4 of what the closed model reached here.
                    let closed = runs
                        .iter()
                        .find(|(t, _)| *t == Tool::StampedeClosed)
                        .and_then(|(_, r)| r.first());
                    match closed {
                        Some(r) => rate = (r.rps * 0.75).max(100.0),
                        None => continue,
                    }
                }
                let load = Load {
                    url: &url,
                    connections,
                    duration: settings.duration,
                    rate,
                };
                match tools.run(tool, load) {
                    Ok(r) => {
                        say(format!(
                            "  c={connections:<5} round {} {:<18} {:>8.0} req/s  p99 {:>8}  {:>6.2} CPU s  {:>7.1} MiB  {:>8.0} req/CPU-s{}",
                            round + 1,
                            tool.label(),
                            r.rps,
                            r.p99_ms.map_or("-".into(), |p| format!("{p:.2}ms")),
                            r.cpu_seconds,
                            r.peak_rss_bytes as f64 / 1048576.0,
                            r.requests_per_cpu_second,
                            if r.errors > 0 {
                                format!("  ({} errors)", r.errors)
                            } else {
                                String::new()
                            }
                        ));
                        runs.iter_mut().find(|(t, _)| *t == tool).expect("listed").1.push(r);
                    }
                    Err(e) => say(format!("  c={connections} {}: {e:#}", tool.label())),
                }
            }
        }
        let med = |tool: Tool| runs.iter().find(|(t, _)| *t == tool).and_then(|(_, r)| median_run(r));
        let ours = med(Tool::StampedeClosed).map(|r| r.requests_per_cpu_second);
        let ratio = |peer: Tool| Some(ours? / med(peer)?.requests_per_cpu_second);
        ratios.push(Ratio {
            connections,
            vs_oha: ratio(Tool::Oha),
            vs_wrk: ratio(Tool::Wrk),
        });
        for (tool, r) in runs {
            if !r.is_empty() {
                rows.push(GeneratorRow {
                    connections,
                    tool,
                    median: median_run(&r),
                    runs: r,
                });
            }
        }
    }
    (rows, ratios)
}

/// Idle streams of one MCP transport: HTTP+SSE sessions (`sse-hold.toml`) or Streamable HTTP
/// sessions holding their GET stream (`mcp-hold.toml`).
#[derive(Debug, Clone, Copy)]
pub struct StreamKind {
    pub label: &'static str,
    pub scenario: &'static str,
    pub figures: fn(&stampede_loadgen::results::Results) -> &stampede_loadgen::data::StreamFigures,
}

pub const SSE_STREAMS: StreamKind = StreamKind {
    label: "SSE",
    scenario: "scenarios/sse-hold.toml",
    figures: |r| &r.sse,
};

pub const MCP_STREAMS: StreamKind = StreamKind {
    label: "Streamable HTTP",
    scenario: "scenarios/mcp-hold.toml",
    figures: |r| &r.mcp,
};

fn sse_label() -> String {
    SSE_STREAMS.label.to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamRow {
    #[serde(default = "sse_label")]
    pub transport: String,
    pub streams: u32,
    /// Streams open at once, as the generator counted them.
    pub peak_open: i64,
    pub peak_rss_bytes: u64,
    /// The slope from the smallest count: (RSS − RSS at the smallest) ÷ (streams − smallest).
    pub bytes_per_stream: Option<f64>,
}

/// The generator holding N idle streams of one transport against the gateway.
pub fn streams(
    settings: &Settings,
    tools: &Tools,
    gateway: &Server,
    token: &str,
    root: &Path,
    kind: StreamKind,
    say: &dyn Fn(String),
) -> Vec<StreamRow> {
    let mut rows: Vec<StreamRow> = Vec::new();
    for &n in &settings.sse_streams {
        let out = tools.scratch.join("streams.json");
        let ramp = format!("{}s", (n / 1000).max(2));
        let m = measure(
            Command::new(&tools.stampede)
                .arg("run")
                .arg(root.join(kind.scenario))
                .args([
                    "--quiet",
                    "--target",
                    &gateway.url,
                    "--users",
                    &n.to_string(),
                    "--duration",
                    "5s",
                ])
                .args(["--set", &format!("load.ramp_up={ramp}")])
                .args(["--set", &format!("target.token={token}")])
                .args(["--set", "observe.post_load=\"0s\"", "-o"])
                .arg(&out),
        );
        let row = match m {
            Ok(m) if m.success => {
                let r = stampede_loadgen::results::Results::read(&out).ok();
                let peak_open = r.as_ref().map_or(0, |r| (kind.figures)(r).peak_open);
                let first = rows.first().map(|f| (f.streams, f.peak_rss_bytes));
                StreamRow {
                    transport: kind.label.to_owned(),
                    streams: n,
                    peak_open,
                    peak_rss_bytes: m.peak_rss_bytes,
                    bytes_per_stream: first
                        .filter(|(s, _)| *s < n)
                        .map(|(s, rss)| (m.peak_rss_bytes as f64 - rss as f64) / f64::from(n - s)),
                }
            }
            Ok(m) => {
                say(format!("  {n} streams: stampede failed: {}", m.stderr.trim()));
                continue;
            }
            Err(e) => {
                say(format!("  {n} streams: {e:#}"));
                continue;
            }
        };
        say(format!(
            "  {:<16} {n:>6} streams: {} open at once, peak RSS {:.1} MiB{}",
            kind.label,
            row.peak_open,
            row.peak_rss_bytes as f64 / 1048576.0,
            row.bytes_per_stream
                .map_or(String::new(), |b| format!(", {:.1} KiB per stream", b / 1024.0))
        ));
        rows.push(row);
    }
    rows
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetRow {
    pub target: String,
    pub endpoint: String,
    pub connections: u32,
    pub rps: f64,
    pub p99_ms: Option<f64>,
    pub failures: u64,
    /// The target's CPU seconds per request over the load (from /proc).
    pub cpu_per_request_s: Option<f64>,
    /// SQL statements PostgreSQL ran per request (pg_stat_statements), where counted.
    #[serde(default)]
    pub statements_per_request: Option<f64>,
}

/// One set of endpoints driven at one target.
pub struct TargetPlan<'a> {
    pub label: &'a str,
    pub token: Option<&'a str>,
    /// (name, the action's TOML without its name)
    pub endpoints: &'a [(&'a str, String)],
    pub connections: &'a [u32],
    pub duration: std::time::Duration,
    /// More scenario TOML (`[setup]` to discover what the actions draw from).
    pub extra: &'a str,
    /// Counts the statements the target's database has run, read before and after each run.
    pub statements: Option<&'a dyn Fn() -> Option<u64>>,
}

/// The target's throughput on each endpoint, driven by stampede (closed model, no think time).
pub fn target_runs(tools: &Tools, server: &Server, plan: &TargetPlan<'_>, say: &dyn Fn(String)) -> Vec<TargetRow> {
    let label = plan.label;
    let mut rows = Vec::new();
    for (endpoint, action) in plan.endpoints {
        let scenario = tools.scratch.join("bench-target.toml");
        let text = format!(
            "# bench: {endpoint}\nname = \"bench-target\"\n\n[target]\nurl = \"{}\"\n\n[load]\nusers = 64\nduration = \"10s\"\n\n\
             [observe]\npost_load = \"0s\"\nmetrics = \"\"\npid = {}\n\n{}\n[[actions]]\nname = \"{endpoint}\"\n{action}\n",
            server.url,
            server.pid(),
            plan.extra
        );
        if std::fs::write(&scenario, text).is_err() {
            continue;
        }
        for &c in plan.connections {
            let out = tools.scratch.join("target.json");
            let mut cmd = Command::new(&tools.stampede);
            cmd.arg("run")
                .arg(&scenario)
                .args(["--quiet", "--users", &c.to_string()])
                .args(["--duration", &format!("{}ms", plan.duration.as_millis())]);
            if let Some(t) = plan.token {
                cmd.args(["--set", &format!("target.token={t}")]);
            }
            cmd.arg("-o").arg(&out);
            let before = plan.statements.and_then(|count| count());
            let r = match measure(&mut cmd) {
                Ok(m) if m.success => stampede_loadgen::results::Results::read(&out).ok(),
                Ok(m) => {
                    say(format!("  {label} {endpoint} c={c}: {}", m.stderr.trim()));
                    None
                }
                Err(e) => {
                    say(format!("  {label} {endpoint} c={c}: {e:#}"));
                    None
                }
            };
            let after = plan.statements.and_then(|count| count());
            let Some(r) = r else { continue };
            let per_request = |n: f64| (r.totals.count > 0).then(|| n / r.totals.count as f64);
            let row = TargetRow {
                target: label.to_owned(),
                endpoint: (*endpoint).to_owned(),
                connections: c,
                rps: r.totals.rps,
                p99_ms: r.totals.p99_ms,
                failures: r.totals.failed,
                cpu_per_request_s: r
                    .observed
                    .cpu_load_mean_pct
                    .and_then(|pct| per_request(pct / 100.0 * r.load.seconds)),
                statements_per_request: before
                    .zip(after)
                    .and_then(|(b, a)| per_request(a.saturating_sub(b) as f64)),
            };
            say(format!(
                "  {label:<20} {endpoint:<28} c={c:<5} {:>8.0} req/s  p99 {:>9}  {} failed  {}{}",
                row.rps,
                row.p99_ms.map_or("-".into(), |p| format!("{p:.1}ms")),
                row.failures,
                row.cpu_per_request_s
                    .map_or("target CPU not measured".into(), |s| format!(
                        "{:.0} µs target CPU per request",
                        s * 1e6
                    )),
                row.statements_per_request
                    .map_or(String::new(), |n| format!(", {n:.1} statements per request"))
            ));
            rows.push(row);
        }
    }
    rows
}

/// Streamable HTTP sessions driven as fast as the gateway takes them: each session is `initialize`,
/// the initialized notification, `tools/list`, `ping` and `DELETE` — five HTTP requests on the user's
/// connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRow {
    pub connections: u32,
    pub sessions_per_s: f64,
    /// HTTP requests per second, all five of each session counted.
    pub requests_per_s: f64,
    pub p99_ms: Option<f64>,
    pub failures: u64,
    pub generator_cpu_s: f64,
    pub requests_per_cpu_second: f64,
    /// The same generator on `POST /rpc` (`ping`) at the same concurrency, for comparison.
    pub rpc_requests_per_cpu_second: Option<f64>,
}

const SESSION_ACTION: &str =
    "kind = \"mcp\"\nrequests = [{ method = \"tools/list\" }, { method = \"ping\" }]\nclose = \"delete\"";
const RPC_ACTION: &str = "kind = \"rpc\"\nmethod = \"ping\"";

/// One measured stampede run of `action` against the gateway: its results and its CPU seconds.
fn measured_run(
    settings: &Settings,
    tools: &Tools,
    gateway: &Server,
    token: &str,
    action: &str,
    connections: u32,
) -> anyhow::Result<(stampede_loadgen::results::Results, f64)> {
    let scenario = tools.scratch.join("bench-sessions.toml");
    std::fs::write(
        &scenario,
        format!(
            "# bench: sessions\nname = \"bench-sessions\"\n\n[target]\nurl = \"{}\"\n\n[load]\nusers = 64\nduration = \"10s\"\n\n\
             [observe]\npost_load = \"0s\"\nmetrics = \"\"\n\n[[actions]]\nname = \"s\"\n{action}\n",
            gateway.url
        ),
    )?;
    let out = tools.scratch.join("sessions.json");
    let m = measure(
        Command::new(&tools.stampede)
            .arg("run")
            .arg(&scenario)
            .args(["--quiet", "--users", &connections.to_string()])
            .args(["--duration", &format!("{}ms", settings.duration.as_millis())])
            .args(["--set", &format!("target.token={token}"), "-o"])
            .arg(&out),
    )?;
    anyhow::ensure!(m.success, "{}", m.stderr.trim());
    Ok((stampede_loadgen::results::Results::read(&out)?, m.cpu_seconds))
}

pub fn sessions(
    settings: &Settings,
    tools: &Tools,
    gateway: &Server,
    token: &str,
    say: &dyn Fn(String),
) -> Vec<SessionRow> {
    let mut rows = Vec::new();
    for &c in &settings.gateway_connections {
        let (r, cpu) = match measured_run(settings, tools, gateway, token, SESSION_ACTION, c) {
            Ok(run) => run,
            Err(e) => {
                say(format!("  sessions c={c}: {e:#}"));
                continue;
            }
        };
        // Every series counts one request, and the action's own (the session's start) two.
        let requests = r.totals.count + r.actions.first().map_or(0, |a| a.summary.count);
        let secs = r.load.seconds.max(1e-9);
        let rpc = measured_run(settings, tools, gateway, token, RPC_ACTION, c)
            .ok()
            .map(|(r, cpu)| r.totals.count as f64 / cpu.max(1e-9));
        let row = SessionRow {
            connections: c,
            sessions_per_s: r.mcp.opened as f64 / secs,
            requests_per_s: requests as f64 / secs,
            p99_ms: r.totals.p99_ms,
            failures: r.totals.failed,
            generator_cpu_s: cpu,
            requests_per_cpu_second: requests as f64 / cpu.max(1e-9),
            rpc_requests_per_cpu_second: rpc,
        };
        say(format!(
            "  c={c:<5} {:>7.0} sessions/s {:>8.0} req/s  p99 {:>9}  {} failed  {:>8.0} req/CPU-s (rpc: {})",
            row.sessions_per_s,
            row.requests_per_s,
            row.p99_ms.map_or("-".into(), |p| format!("{p:.1}ms")),
            row.failures,
            row.requests_per_cpu_second,
            row.rpc_requests_per_cpu_second
                .map_or("not measured".into(), |v| format!("{v:.0}"))
        ));
        rows.push(row);
    }
    rows
}
