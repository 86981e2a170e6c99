//! The generator against oha and wrk: every tool on one target at each concurrency, in alternating
//! order over the rounds (A B A B: drift of a noisy machine falls on every tool alike); requests per
//! generator CPU-second, and the ratios of the medians. A target that counts what it served (nginx)
//! has each run's count checked against the tool's.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tools::{Load, Syscalls, Tool, ToolRun, Tools};
use crate::{Settings, median};

fn hello() -> String {
    "hello".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratorRow {
    /// Which target (`hello`, `nginx`, `nginx https`, `nginx https, new connections`).
    #[serde(default = "hello")]
    pub target: String,
    pub connections: u32,
    pub tool: Tool,
    pub runs: Vec<ToolRun>,
    /// Field by field medians over the rounds.
    pub median: Option<ToolRun>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ratio {
    #[serde(default = "hello")]
    pub target: String,
    pub connections: u32,
    /// stampede (closed) requests per generator CPU-second ÷ the peer's, medians of the same run.
    pub vs_oha: Option<f64>,
    pub vs_wrk: Option<f64>,
}

/// One tool's system calls and context switches per request on a target (`perf stat`, one run).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostRow {
    pub target: String,
    pub connections: u32,
    pub tool: Tool,
    #[serde(flatten)]
    pub counted: Syscalls,
}

/// What the generator runs load.
pub struct Target<'a> {
    pub label: &'a str,
    /// The whole URL, path included.
    pub url: String,
    /// https: the CA to trust.
    pub ca: Option<&'a Path>,
    pub keep_alive: bool,
    /// The target's own count of requests served so far.
    pub served: Option<&'a dyn Fn() -> Option<u64>>,
    /// After each run: (resumed, all) TLS sessions the target saw since the last call.
    pub resumed: Option<&'a dyn Fn() -> (u64, u64)>,
    /// Run stampede's open model too.
    pub open_model: bool,
    /// The cores each tool runs on (`cores::Split`); `None`: anywhere.
    pub generator_cores: Option<&'a [usize]>,
}

impl Target<'_> {
    fn load(&self, connections: u32, settings: &Settings, rate: f64) -> Load<'_> {
        Load {
            url: &self.url,
            connections,
            duration: settings.duration,
            rate,
            ca: self.ca,
            keep_alive: self.keep_alive,
            cores: self.generator_cores,
        }
    }

    /// Run `tool` once, with the target's count of what it served and the resumed share.
    fn run(&self, tools: &Tools, tool: Tool, load: Load) -> anyhow::Result<ToolRun> {
        let before = self.served.and_then(settled);
        if let Some(f) = self.resumed {
            f();
        }
        let mut r = tools.run(tool, load)?;
        let after = self.served.and_then(settled);
        // Each look at the count is a request the target counts too.
        r.target_requests = before
            .zip(after)
            .map(|((b, _), (a, looks))| a.saturating_sub(b + looks));
        if let Some(f) = self.resumed {
            let (resumed, all) = f();
            r.resumed_share = (all > 0).then(|| resumed as f64 / all as f64);
        }
        Ok(r)
    }
}

/// The target's count once it has stopped moving, and how many looks that took (each one a request
/// it counts): the requests a tool leaves in flight at its exit are still being read by the target
/// then, and would otherwise land in the next run's count.
fn settled(served: &dyn Fn() -> Option<u64>) -> Option<(u64, u64)> {
    let mut last = served()?;
    for looks in 2..=30 {
        std::thread::sleep(Duration::from_millis(100));
        let now = served()?;
        if now == last + 1 {
            return Some((now, looks));
        }
        last = now;
    }
    Some((last, 30))
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
        user_cpu_s: m(&|r| r.user_cpu_s)?,
        system_cpu_s: m(&|r| r.system_cpu_s)?,
        peak_rss_bytes: m(&|r| r.peak_rss_bytes as f64)? as u64,
        requests_per_cpu_second: m(&|r| r.requests_per_cpu_second)?,
        target_requests: opt(&|r| r.target_requests.map(|n| n as f64)).map(|n| n as u64),
        resumed_share: opt(&|r| r.resumed_share),
    })
}

fn describe(r: &ToolRun) -> String {
    let mut s = format!(
        "{:>8.0} req/s  p99 {:>8}  {:>6.2} CPU s ({:.2} µs user + {:.2} µs kernel per request)  {:>7.1} MiB  {:>8.0} req/CPU-s",
        r.rps,
        r.p99_ms.map_or("-".into(), |p| format!("{p:.2}ms")),
        r.cpu_seconds,
        r.user_cpu_s * 1e6 / r.requests.max(1) as f64,
        r.system_cpu_s * 1e6 / r.requests.max(1) as f64,
        r.peak_rss_bytes as f64 / 1048576.0,
        r.requests_per_cpu_second,
    );
    if r.errors > 0 {
        s += &format!("  ({} errors)", r.errors);
    }
    if let Some(n) = r.target_requests {
        s += &format!("  (target counted {n})");
    }
    if let Some(share) = r.resumed_share {
        s += &format!("  ({:.0} % resumed)", share * 100.0);
    }
    s
}

/// Every tool against `target` at each concurrency.
pub fn generator(
    settings: &Settings,
    tools: &Tools,
    target: &Target,
    connections: &[u32],
    say: &dyn Fn(String),
) -> (Vec<GeneratorRow>, Vec<Ratio>) {
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let order: &[Tool] = if target.open_model {
        &[Tool::StampedeClosed, Tool::Oha, Tool::StampedeOpen, Tool::Wrk]
    } else {
        &[Tool::StampedeClosed, Tool::Oha, Tool::Wrk]
    };
    for &connections in connections {
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
                match target.run(tools, tool, target.load(connections, settings, rate)) {
                    Ok(r) => {
                        say(format!(
                            "  {} c={connections:<5} round {} {:<18} {}",
                            target.label,
                            round + 1,
                            tool.label(),
                            describe(&r)
                        ));
                        runs.iter_mut().find(|(t, _)| *t == tool).expect("listed").1.push(r);
                    }
                    Err(e) => say(format!("  {} c={connections} {}: {e:#}", target.label, tool.label())),
                }
            }
        }
        let med = |tool: Tool| runs.iter().find(|(t, _)| *t == tool).and_then(|(_, r)| median_run(r));
        let ours = med(Tool::StampedeClosed).map(|r| r.requests_per_cpu_second);
        let ratio = |peer: Tool| Some(ours? / med(peer)?.requests_per_cpu_second);
        ratios.push(Ratio {
            target: target.label.to_owned(),
            connections,
            vs_oha: ratio(Tool::Oha),
            vs_wrk: ratio(Tool::Wrk),
        });
        for (tool, r) in runs {
            if !r.is_empty() {
                rows.push(GeneratorRow {
                    target: target.label.to_owned(),
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

/// Each tool once under `perf stat`: system calls and context switches per request. A machine
/// without perf (or without permission to count) gets none, and the table says "not measured".
pub fn syscalls(
    settings: &Settings,
    tools: &Tools,
    target: &Target,
    connections: u32,
    say: &dyn Fn(String),
) -> Vec<CostRow> {
    let mut rows = Vec::new();
    for tool in [Tool::StampedeClosed, Tool::Oha, Tool::Wrk] {
        if !tools.has(tool) {
            continue;
        }
        match tools.count_syscalls(tool, target.load(connections, settings, 0.0)) {
            Ok(counted) => {
                say(format!(
                    "  {} c={connections} {:<18} {:.2} system calls and {} context switches per request",
                    target.label,
                    tool.label(),
                    counted.syscalls_per_request,
                    counted
                        .context_switches_per_request
                        .map_or("-".into(), |n| format!("{n:.3}"))
                ));
                rows.push(CostRow {
                    target: target.label.to_owned(),
                    connections,
                    tool,
                    counted,
                });
            }
            Err(e) => say(format!(
                "  {} {}: system calls not measured: {e:#}",
                target.label,
                tool.label()
            )),
        }
    }
    rows
}
