//! The three parts of the bench. Every generator run is a separate process measured by `wait4`; the
//! targets are started by the bench, never by a generator, so no target's CPU or memory is counted as
//! the generator's.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::proc::{Look, Sampler, Server, measure};
use crate::tools::Tools;
use crate::{Settings, median};

/// Idle streams of one MCP transport: HTTP+SSE sessions (`sse-hold.toml`), Streamable HTTP
/// sessions holding their GET stream (`mcp-hold.toml`), or 2026-07-28 `subscriptions/listen` streams
/// (the same file in the stateless era).
#[derive(Debug, Clone, Copy)]
pub struct StreamKind {
    pub label: &'static str,
    pub scenario: &'static str,
    /// `--set` overrides of the scenario.
    pub sets: &'static [&'static str],
    pub figures: fn(&stampede_loadgen::results::Results) -> &stampede_loadgen::data::StreamFigures,
}

pub const SSE_STREAMS: StreamKind = StreamKind {
    label: "SSE",
    scenario: "scenarios/sse-hold.toml",
    sets: &[],
    figures: |r| &r.sse,
};

pub const MCP_STREAMS: StreamKind = StreamKind {
    label: "Streamable HTTP",
    scenario: "scenarios/mcp-hold.toml",
    sets: &[],
    figures: |r| &r.mcp,
};

pub const LISTEN_STREAMS: StreamKind = StreamKind {
    label: "subscriptions/listen",
    scenario: "scenarios/mcp-hold.toml",
    sets: &["actions[0].protocol=\"2026-07-28\""],
    figures: |r| &r.mcp,
};

/// Seconds between a gateway's keep-alives on a held stream in the streams part (round 2's, so the
/// generator's figures compare): the gateway's CPU per idle stream is that of holding it.
pub const STREAM_KEEPALIVE_S: u32 = 30;

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
    /// The gateway holding them (a fresh one per run): its RSS with every stream open, the slope as
    /// above, and its CPU seconds per held stream per second (idle: a keep-alive every 30 s).
    #[serde(default)]
    pub gateway_rss_bytes: Option<u64>,
    #[serde(default)]
    pub gateway_bytes_per_stream: Option<f64>,
    #[serde(default)]
    pub gateway_cpu_per_stream_s: Option<f64>,
}

/// The gateway while every stream was open: from a second after the ramp to half a second before the
/// steady part ends (`hold`: its length), the load having started `load_at` into the looks. (RSS at
/// its largest there, CPU seconds per second.)
fn while_held(looks: &[Look], load_at: Duration, ramp: Duration, hold: Duration) -> Option<(u64, f64)> {
    let from = load_at + ramp + Duration::from_secs(1);
    let to = (load_at + ramp + hold).checked_sub(Duration::from_millis(500))?;
    let window: Vec<&Look> = looks.iter().filter(|l| l.at >= from && l.at <= to).collect();
    let (first, last) = (window.first()?, window.last()?);
    let seconds = (last.at - first.at).as_secs_f64();
    if seconds < 0.5 {
        return None;
    }
    let rss = window.iter().map(|l| l.rss_bytes).max()?;
    Some((rss, (last.cpu_seconds - first.cpu_seconds) / seconds))
}

/// The generator holding N idle streams of one transport against a fresh gateway each time
/// (`gateway`: started per run, so memory one run kept is not the next one's), both measured.
pub fn streams(
    settings: &Settings,
    tools: &Tools,
    gateway: &dyn Fn() -> anyhow::Result<(Server, tempfile::TempDir)>,
    token: &str,
    root: &Path,
    kind: StreamKind,
    say: &dyn Fn(String),
) -> Vec<StreamRow> {
    let mut rows: Vec<StreamRow> = Vec::new();
    let hold = Duration::from_secs(5);
    for &n in &settings.sse_streams {
        let (gw, _dir) = match gateway() {
            Ok(g) => g,
            Err(e) => {
                say(format!("  {n} streams: the gateway did not start: {e:#}"));
                continue;
            }
        };
        let out = tools.scratch.join("streams.json");
        let ramp = Duration::from_secs(u64::from((n / 1000).max(2)));
        let sampler = Sampler::start(gw.pid());
        let m = measure(
            Command::new(&tools.stampede)
                .arg("run")
                .arg(root.join(kind.scenario))
                .args([
                    "--quiet",
                    "--target",
                    &gw.url,
                    "--users",
                    &n.to_string(),
                    "--duration",
                    &format!("{}s", hold.as_secs()),
                ])
                .args(["--set", &format!("load.ramp_up=\"{}s\"", ramp.as_secs())])
                .args(["--set", &format!("target.token={token}")])
                .args(kind.sets.iter().flat_map(|s| ["--set", *s]))
                .args(["--set", "observe.post_load=\"0s\"", "-o"])
                .arg(&out),
        );
        let sampled_from = sampler.started;
        let looks = sampler.finish();
        let row = match m {
            Ok(m) if m.success => {
                let r = stampede_loadgen::results::Results::read(&out).ok();
                // The load's start (after the generator's own start and setup), as the looks count.
                let load_at = r
                    .as_ref()
                    .and_then(|r| humantime::parse_rfc3339(r.load.started_at.as_deref()?).ok())
                    .and_then(|t| t.duration_since(sampled_from).ok());
                let held = load_at.and_then(|at| while_held(&looks, at, ramp, hold));
                let peak_open = r.as_ref().map_or(0, |r| (kind.figures)(r).peak_open);
                let first = rows.first();
                let slope = |first: u64, now: u64, from: u32| (now as f64 - first as f64) / f64::from(n - from);
                StreamRow {
                    transport: kind.label.to_owned(),
                    streams: n,
                    peak_open,
                    peak_rss_bytes: m.peak_rss_bytes,
                    bytes_per_stream: first
                        .filter(|f| f.streams < n)
                        .map(|f| slope(f.peak_rss_bytes, m.peak_rss_bytes, f.streams)),
                    gateway_rss_bytes: held.map(|(rss, _)| rss),
                    gateway_bytes_per_stream: first
                        .filter(|f| f.streams < n)
                        .and_then(|f| Some(slope(f.gateway_rss_bytes?, held?.0, f.streams))),
                    gateway_cpu_per_stream_s: held.map(|(_, cpu)| cpu / f64::from(n.max(1))),
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
        let kib = |b: Option<f64>| b.map_or(String::new(), |b| format!(", {:.1} KiB per stream", b / 1024.0));
        say(format!(
            "  {:<20} {n:>6} streams: {} open at once, generator peak RSS {:.1} MiB{}; gateway RSS {}{}, {} CPU per stream per second",
            kind.label,
            row.peak_open,
            row.peak_rss_bytes as f64 / 1048576.0,
            kib(row.bytes_per_stream),
            row.gateway_rss_bytes
                .map_or("not measured".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0)),
            kib(row.gateway_bytes_per_stream),
            row.gateway_cpu_per_stream_s
                .map_or("not measured".into(), |c| format!("{:.2} µs", c * 1e6)),
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
    /// The requests a run counts, when not all of its series (`totals.count`) are.
    pub requests: Option<fn(&stampede_loadgen::results::Results) -> u64>,
    /// Rounds of every run (the rows are their medians).
    pub rounds: usize,
    /// The cores the generator runs on (`cores::Split`); `None`: anywhere.
    pub generator_cores: Option<&'a [usize]>,
}

/// The target's throughput on each endpoint, driven by stampede (closed model, no think time): every
/// endpoint and concurrency once per round, rounds interleaved so the rows compared were measured side
/// by side; each row the median of its rounds.
pub fn target_runs(tools: &Tools, server: &Server, plan: &TargetPlan<'_>, say: &dyn Fn(String)) -> Vec<TargetRow> {
    let mut scenarios = Vec::new();
    for (i, (endpoint, action)) in plan.endpoints.iter().enumerate() {
        let scenario = tools.scratch.join(format!("bench-target-{i}.toml"));
        let text = format!(
            "# bench: {endpoint}\nname = \"bench-target\"\n\n[target]\nurl = \"{}\"\n\n[load]\nusers = 64\nduration = \"10s\"\n\n\
             [observe]\npost_load = \"0s\"\nmetrics = \"\"\npid = {}\n\n{}\n[[actions]]\nname = \"{endpoint}\"\n{action}\n",
            server.url,
            server.pid(),
            plan.extra
        );
        if std::fs::write(&scenario, text).is_ok() {
            scenarios.push((*endpoint, scenario));
        }
    }
    let mut runs: Vec<Vec<TargetRow>> = vec![Vec::new(); scenarios.len() * plan.connections.len()];
    for round in 1..=plan.rounds.max(1) {
        // Every other round in reverse (A B, B A, A B): a drift over the run (the target's state
        // growing, the machine warming) falls on every endpoint alike, not on the last of each round.
        let mut order: Vec<usize> = (0..scenarios.len()).collect();
        if round % 2 == 0 {
            order.reverse();
        }
        for i in order {
            let (endpoint, scenario) = &scenarios[i];
            for (j, &c) in plan.connections.iter().enumerate() {
                if let Some(row) = target_run(tools, plan, endpoint, scenario, c, say) {
                    say(format!("  {}{}", round_label(round, plan.rounds), row_line(&row)));
                    runs[i * plan.connections.len() + j].push(row);
                }
            }
        }
    }
    let rows: Vec<TargetRow> = runs.iter().filter_map(|r| median_row(r)).collect();
    if plan.rounds > 1 {
        for row in &rows {
            say(format!("  median    {}", row_line(row)));
        }
    }
    rows
}

fn round_label(round: usize, rounds: usize) -> String {
    if rounds > 1 {
        format!("round {round}  ")
    } else {
        String::new()
    }
}

/// One run of one endpoint at one concurrency.
fn target_run(
    tools: &Tools,
    plan: &TargetPlan<'_>,
    endpoint: &str,
    scenario: &Path,
    c: u32,
    say: &dyn Fn(String),
) -> Option<TargetRow> {
    let label = plan.label;
    let out = tools.scratch.join("target.json");
    let mut cmd = Command::new(&tools.stampede);
    if let Some(cores) = plan.generator_cores {
        crate::cores::pin(&mut cmd, cores);
    }
    cmd.arg("run")
        .arg(scenario)
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
    let r = r?;
    let requests = plan.requests.map_or(r.totals.count, |count| count(&r));
    let per_request = |n: f64| (requests > 0).then(|| n / requests as f64);
    Some(TargetRow {
        target: label.to_owned(),
        endpoint: endpoint.to_owned(),
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
    })
}

/// The median of one endpoint's rounds (failures are summed: one in any round shows).
fn median_row(runs: &[TargetRow]) -> Option<TargetRow> {
    let first = runs.first()?;
    let m = |f: &dyn Fn(&TargetRow) -> Option<f64>| median(runs.iter().filter_map(f).collect());
    Some(TargetRow {
        rps: m(&|r| Some(r.rps))?,
        p99_ms: m(&|r| r.p99_ms),
        failures: runs.iter().map(|r| r.failures).sum(),
        cpu_per_request_s: m(&|r| r.cpu_per_request_s),
        statements_per_request: m(&|r| r.statements_per_request),
        ..first.clone()
    })
}

fn row_line(row: &TargetRow) -> String {
    format!(
        "{:<20} {:<28} c={:<5} {:>8.0} req/s  p99 {:>9}  {} failed  {}{}",
        row.target,
        row.endpoint,
        row.connections,
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
    )
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

/// A session of the session era (pinned: `auto` would find the stateless era first, which has no
/// session to delete).
const SESSION_ACTION: &str = "kind = \"mcp\"\nprotocol = \"2025-06-18\"\n\
                              requests = [{ method = \"tools/list\" }, { method = \"ping\" }]\nclose = \"delete\"";
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
