//! The load generators compared: stampede (closed and open model), oha and wrk — how each is started
//! for `connections` against a URL for a duration, and how its own report is read back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::proc::{Measured, measure};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    StampedeClosed,
    StampedeOpen,
    Oha,
    Wrk,
}

impl Tool {
    pub fn label(self) -> &'static str {
        match self {
            Tool::StampedeClosed => "stampede (closed)",
            Tool::StampedeOpen => "stampede (open)",
            Tool::Oha => "oha",
            Tool::Wrk => "wrk",
        }
    }
}

/// One tool run: what it reported and what it cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolRun {
    pub requests: u64,
    pub errors: u64,
    pub rps: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub cpu_seconds: f64,
    /// Of which in user space, and in the kernel.
    #[serde(default)]
    pub user_cpu_s: f64,
    #[serde(default)]
    pub system_cpu_s: f64,
    pub peak_rss_bytes: u64,
    pub requests_per_cpu_second: f64,
    /// Requests the target itself counted over the run, where it counts them (nginx's `stub_status`).
    #[serde(default)]
    pub target_requests: Option<u64>,
    /// New TLS connections: the share the server resumed (its access log's `$ssl_session_reused`).
    #[serde(default)]
    pub resumed_share: Option<f64>,
}

/// What `perf stat` counted in one run, per request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Syscalls {
    pub syscalls_per_request: f64,
    pub context_switches_per_request: Option<f64>,
}

/// Where the tools are.
#[derive(Debug, Clone)]
pub struct Tools {
    pub stampede: PathBuf,
    pub oha: Option<PathBuf>,
    pub wrk: Option<PathBuf>,
    pub scratch: PathBuf,
}

/// What to load.
#[derive(Debug, Clone, Copy)]
pub struct Load<'a> {
    /// The whole URL: origin and path.
    pub url: &'a str,
    pub connections: u32,
    pub duration: Duration,
    /// The open model's arrival rate.
    pub rate: f64,
    /// https: the CA a verifying client trusts (stampede verifies; wrk does not, oha is told not to).
    pub ca: Option<&'a Path>,
    /// false: a new connection for every request (`connection: close`).
    pub keep_alive: bool,
    /// The cores the tool runs on, a thread on each; `None`: anywhere, with its default threads.
    pub cores: Option<&'a [usize]>,
}

impl Load<'_> {
    /// The tool's thread count, when the cores set it.
    fn threads(&self) -> Option<String> {
        self.cores.map(|c| c.len().to_string())
    }
}

fn finish(m: &Measured, requests: u64, errors: u64, rps: f64, p50: Option<f64>, p99: Option<f64>) -> ToolRun {
    ToolRun {
        requests,
        errors,
        rps,
        p50_ms: p50,
        p99_ms: p99,
        cpu_seconds: m.cpu_seconds,
        user_cpu_s: m.user_seconds,
        system_cpu_s: m.system_seconds,
        peak_rss_bytes: m.peak_rss_bytes,
        requests_per_cpu_second: if m.cpu_seconds > 0.0 {
            requests as f64 / m.cpu_seconds
        } else {
            0.0
        },
        target_requests: None,
        resumed_share: None,
    }
}

impl Tools {
    pub fn has(&self, tool: Tool) -> bool {
        match tool {
            Tool::StampedeClosed | Tool::StampedeOpen => true,
            Tool::Oha => self.oha.is_some(),
            Tool::Wrk => self.wrk.is_some(),
        }
    }

    pub fn run(&self, tool: Tool, load: Load) -> anyhow::Result<ToolRun> {
        self.run_under(tool, load, &[])
    }

    /// Run `tool` under `prefix` (a command that runs the rest: `perf stat … --`).
    pub fn run_under(&self, tool: Tool, load: Load, prefix: &[String]) -> anyhow::Result<ToolRun> {
        match tool {
            Tool::StampedeClosed | Tool::StampedeOpen => self.stampede(tool == Tool::StampedeOpen, load, prefix),
            Tool::Oha => self.oha(load, prefix),
            Tool::Wrk => self.wrk(load, prefix),
        }
    }

    /// One run of `tool` counted by `perf stat`: its system calls and context switches per request.
    pub fn count_syscalls(&self, tool: Tool, load: Load) -> anyhow::Result<Syscalls> {
        let out = self.scratch.join("perf-stat.csv");
        let prefix: Vec<String> = [
            "perf",
            "stat",
            "-x,",
            "-e",
            "raw_syscalls:sys_enter,context-switches",
            "-o",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([out.display().to_string(), "--".to_owned()])
        .collect();
        let run = self.run_under(tool, load, &prefix)?;
        let text = std::fs::read_to_string(&out)?;
        let count = |event: &str| -> Option<f64> {
            text.lines()
                .find(|l| l.contains(event))
                .and_then(|l| l.split(',').next()?.trim().parse::<f64>().ok())
        };
        let per = |n: Option<f64>| n.filter(|_| run.requests > 0).map(|n| n / run.requests as f64);
        Ok(Syscalls {
            syscalls_per_request: per(count("raw_syscalls:sys_enter")).context("perf stat counted no system calls")?,
            context_switches_per_request: per(count("context-switches")),
        })
    }

    /// `program`, under `prefix` when there is one, on the load's cores.
    fn command(program: &Path, prefix: &[String], load: &Load) -> Command {
        let mut c = match prefix.split_first() {
            None => Command::new(program),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
        };
        if let Some(cores) = load.cores {
            crate::cores::pin(&mut c, cores);
        }
        c
    }

    fn stampede(&self, open: bool, load: Load, prefix: &[String]) -> anyhow::Result<ToolRun> {
        let scenario = self.scratch.join("bench-get.toml");
        std::fs::write(&scenario, get_scenario(&load, open))?;
        let out = self.scratch.join("stampede-run.json");
        let secs = format!("{}ms", load.duration.as_millis());
        let mut cmd = Self::command(&self.stampede, prefix, &load);
        cmd.arg("run")
            .arg(&scenario)
            .args(["--quiet", "--duration", &secs, "-o"])
            .arg(&out);
        if let Some(n) = load.threads() {
            cmd.args(["--threads", &n]);
        }
        if open {
            cmd.args(["--rate", &format!("{:.0}", load.rate)])
                .args(["--set", &format!("load.max_in_flight={}", load.connections)]);
        } else {
            cmd.args(["--users", &load.connections.to_string()]);
        }
        let m = measure(&mut cmd)?;
        if !m.success {
            bail!("stampede failed: {}", m.stderr.trim());
        }
        let r = stampede_loadgen::results::Results::read(&out)?;
        Ok(finish(
            &m,
            r.totals.count,
            r.totals.failed,
            r.totals.rps,
            r.totals.p50_ms,
            r.totals.p99_ms,
        ))
    }

    fn oha(&self, load: Load, prefix: &[String]) -> anyhow::Result<ToolRun> {
        let oha = self.oha.as_ref().context("oha is not installed")?;
        let m = measure(
            Self::command(oha, prefix, &load)
                .args(
                    load.threads()
                        .map(|n| ["--worker-threads".to_owned(), n])
                        .into_iter()
                        .flatten(),
                )
                .args(["--no-tui", "--output-format", "json", "-c"])
                .arg(load.connections.to_string())
                .arg("-z")
                .arg(format!("{}ms", load.duration.as_millis()))
                .args(load.ca.map(|_| "--insecure"))
                .args((!load.keep_alive).then_some("--disable-keepalive"))
                .arg(load.url),
        )?;
        if !m.success {
            bail!("oha failed: {}", m.stderr.trim());
        }
        let (requests, errors, rps, p50, p99) = parse_oha(&m.stdout)?;
        Ok(finish(&m, requests, errors, rps, p50, p99))
    }

    fn wrk(&self, load: Load, prefix: &[String]) -> anyhow::Result<ToolRun> {
        let wrk = self.wrk.as_ref().context("wrk is not installed")?;
        let m = measure(
            Self::command(wrk, prefix, &load)
                // wrk's own default is 2 threads.
                .arg(format!("-t{}", load.threads().as_deref().unwrap_or("2")))
                .args(["--latency", "-c"])
                .arg(load.connections.to_string())
                .arg("-d")
                .arg(format!("{}s", load.duration.as_secs().max(1)))
                .args(
                    (!load.keep_alive)
                        .then_some(["-H", "Connection: close"])
                        .into_iter()
                        .flatten(),
                )
                .arg(load.url),
        )?;
        if !m.success {
            bail!("wrk failed: {}", m.stderr.trim());
        }
        let (requests, errors, rps, p50, p99) = parse_wrk(&m.stdout)?;
        Ok(finish(&m, requests, errors, rps, p50, p99))
    }
}

/// The scenario stampede runs: one GET of the URL's path, no think time, no observers (`ports = []`:
/// not even the target's sockets, read from /proc/net/tcp, which wrk and oha do not do); the closed
/// model's users or the open model's rate come from the command line.
pub fn get_scenario(load: &Load, open: bool) -> String {
    let model = if open {
        "model = \"open\"\nrate = 1000.0"
    } else {
        "users = 64"
    };
    let after_scheme = load.url.find("://").map_or(0, |i| i + 3);
    let (origin, path) = match load.url[after_scheme..].find('/') {
        Some(i) => load.url.split_at(after_scheme + i),
        None => (load.url, "/"),
    };
    let cacert = load
        .ca
        .map_or(String::new(), |ca| format!("cacert = \"{}\"\n", ca.display()));
    let close = if load.keep_alive {
        ""
    } else {
        "headers = { connection = \"close\" }\n"
    };
    format!(
        "# bench: GET {path} as fast as the connections allow\nname = \"bench-get\"\n\n[target]\nurl = \"{origin}\"\n{cacert}\n\
         [load]\n{model}\nduration = \"10s\"\n\n[observe]\npost_load = \"0s\"\nmetrics = \"\"\nports = []\n\n\
         [[actions]]\nname = \"get\"\nkind = \"http\"\npath = \"{path}\"\n{close}"
    )
}

type Parsed = (u64, u64, f64, Option<f64>, Option<f64>);

/// oha's `--output-format json`: latencies in seconds; requests = answers with a status.
pub fn parse_oha(text: &str) -> anyhow::Result<Parsed> {
    let v: serde_json::Value = serde_json::from_str(text).context("oha's JSON")?;
    let sum = |key: &str| -> u64 {
        v[key]
            .as_object()
            .map_or(0, |m| m.values().filter_map(|n| n.as_u64()).sum())
    };
    let statuses = sum("statusCodeDistribution");
    // Requests still in flight when `-z` ends are "aborted due to deadline": cut, not failed.
    let errors: u64 = v["errorDistribution"].as_object().map_or(0, |m| {
        m.iter()
            .filter(|(k, _)| !k.contains("deadline"))
            .filter_map(|(_, n)| n.as_u64())
            .sum()
    });
    let non_2xx: u64 = v["statusCodeDistribution"].as_object().map_or(0, |m| {
        m.iter()
            .filter(|(k, _)| !k.starts_with('2'))
            .filter_map(|(_, n)| n.as_u64())
            .sum()
    });
    let rps = v["summary"]["requestsPerSec"]
        .as_f64()
        .context("oha: no summary.requestsPerSec")?;
    let ms = |k: &str| v["latencyPercentiles"][k].as_f64().map(|s| s * 1000.0);
    Ok((statuses, errors + non_2xx, rps, ms("p50"), ms("p99")))
}

/// A wrk duration such as `435.00us`, `1.23ms`, `2.00s`, in milliseconds.
fn wrk_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        return None;
    };
    num.parse::<f64>().ok().map(|n| n * scale)
}

/// wrk's text report with `--latency`.
pub fn parse_wrk(text: &str) -> anyhow::Result<Parsed> {
    let mut requests = None;
    let mut rps = None;
    let (mut p50, mut p99) = (None, None);
    let mut errors = 0u64;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["50%", v] => p50 = wrk_ms(v),
            ["99%", v] => p99 = wrk_ms(v),
            [n, "requests", "in", ..] => requests = n.parse::<u64>().ok(),
            ["Requests/sec:", v] => rps = v.parse::<f64>().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>()
            }
            _ => {}
        }
    }
    Ok((
        requests.context("wrk: no 'N requests in' line")?,
        errors,
        rps.context("wrk: no Requests/sec line")?,
        p50,
        p99,
    ))
}

/// A peer on PATH or in cargo's bin folder.
pub fn find(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    // Debian puts nginx in /usr/sbin, which is not on every user's PATH.
    dirs.push(PathBuf::from("/usr/sbin"));
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(Path::new(&home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_reports() {
        let text = "Running 10s test @ http://127.0.0.1:1/\n  2 threads and 64 connections\n  Latency Distribution\n     50%  435.00us\n     75%  600.00us\n     90%  800.00us\n     99%    1.23ms\n  123456 requests in 10.00s, 12.34MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  12345.67\nTransfer/sec:      1.23MB\n";
        let (n, errors, rps, p50, p99) = parse_wrk(text).unwrap();
        assert_eq!((n, errors), (123456, 7));
        assert!((rps - 12345.67).abs() < 1e-9);
        assert!((p50.unwrap() - 0.435).abs() < 1e-9);
        assert!((p99.unwrap() - 1.23).abs() < 1e-9);
        assert!(parse_wrk("nothing").is_err());
    }

    #[test]
    fn reads_oha_json() {
        let text = r#"{"summary":{"successRate":1.0,"requestsPerSec":5000.5},"latencyPercentiles":{"p50":0.001,"p99":0.004},"statusCodeDistribution":{"200":4990,"503":10},"errorDistribution":{"aborted due to deadline":3}}"#;
        let (n, errors, rps, p50, p99) = parse_oha(text).unwrap();
        assert_eq!(
            (n, errors),
            (5000, 10),
            "503s are errors, requests cut at the deadline are not"
        );
        assert_eq!(rps, 5000.5);
        assert_eq!((p50, p99), (Some(1.0), Some(4.0)));
    }
}
