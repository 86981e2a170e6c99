//! The upstream as a child process of a run: `stampede upstream` started on a free port before setup,
//! its URL read from its first line, its CPU read from /proc when it stops — apart from the
//! generator's and the target's.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use super::Knobs;
use crate::lang::format_duration;

/// A running upstream.
pub struct Spawned {
    child: Child,
    pub pid: u32,
    pub url: String,
}

/// What a stopped upstream leaves for the results.
#[derive(Debug, Clone)]
pub struct Stopped {
    pub url: String,
    /// Its CPU seconds over its life (the run's setup, load and post-load window); `None` when /proc
    /// could not be read.
    pub cpu_seconds: Option<f64>,
}

fn range(r: crate::lang::DurRange) -> String {
    if r.min == r.max {
        format_duration(r.min)
    } else {
        format!("{}..{}", format_duration(r.min), format_duration(r.max))
    }
}

/// Start `stampede upstream` with `knobs`; answers once it accepts connections.
pub async fn spawn(knobs: &Knobs) -> anyhow::Result<Spawned> {
    let bin = crate::process::stampede_binary();
    let mut cmd = Command::new(&bin);
    cmd.arg("upstream")
        .args(["--bind", "127.0.0.1:0"])
        .args(["--tools", &knobs.tools.to_string()])
        .args(["--latency", &range(knobs.latency)])
        .args(["--initialize-latency", &range(knobs.initialize_latency)])
        .args(["--error-rate", &knobs.error_rate.to_string()])
        .args(["--stall-rate", &knobs.stall_rate.to_string()]);
    if knobs.sse_replies {
        cmd.arg("--sse-replies");
    }
    if knobs.conformance {
        cmd.arg("--conformance");
    }
    if let Some(every) = knobs.list_changed_every {
        cmd.args(["--list-changed-every", &format_duration(every)]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the upstream ({})", bin.display()))?;
    let pid = child.id().context("the upstream exited at once")?;
    let stdout = child.stdout.take().context("upstream stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .context("the upstream did not start within 10 s")??;
    let Some(line) = line else {
        bail!("the upstream exited before listening");
    };
    let url = crate::process::listening_url(&line)
        .with_context(|| format!("unexpected first line from the upstream: {line}"))?
        .to_owned();
    Ok(Spawned { child, pid, url })
}

impl Spawned {
    /// Read its CPU, then stop it (SIGTERM, then a kill if it lingers).
    pub async fn stop(mut self) -> Stopped {
        let cpu_seconds = crate::host::cpu_seconds_of(&self.pid.to_string());
        crate::process::terminate(self.pid);
        crate::process::wait_or_kill(&mut self.child, Duration::from_secs(5)).await;
        Stopped {
            url: self.url,
            cpu_seconds,
        }
    }
}
