//! The generator's memory in the field's mix: `scenarios/mixed-4000.toml` as shipped (4000 users, both
//! transports' sessions held, REST reads and writes, a spawned gateway on SQLite). Its peak RSS is the
//! generator's own (VmHWM, in the results file): `wait4` would also count the gateway it spawns.

use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::proc::measure;
use crate::tools::Tools;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MixedRow {
    pub users: f64,
    /// Streams of both transports open at once, at the peak of each.
    pub peak_streams_open: i64,
    pub requests: u64,
    pub failure_rate: f64,
    pub generator_cpu_s: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
}

/// Run mixed-4000 (with `quick`, a small pass of it) and read its figures.
pub fn run(tools: &Tools, root: &Path, quick: bool, say: &dyn Fn(String)) -> Option<MixedRow> {
    let out = tools.scratch.join("mixed.json");
    let mut cmd = Command::new(&tools.stampede);
    cmd.arg("run")
        .arg(root.join("scenarios/mixed-4000.toml"))
        .arg("--quiet");
    if quick {
        cmd.args(["--users", "100", "--duration", "2s"]).args([
            "--set",
            "load.ramp_up=\"1s\"",
            "--set",
            "load.ramp_down=\"0s\"",
            "--set",
            "load.graceful_stop=\"1s\"",
            "--set",
            "observe.post_load=\"0s\"",
        ]);
    }
    cmd.arg("-o").arg(&out);
    let m = match measure(&mut cmd) {
        Ok(m) if m.success => m,
        Ok(m) => {
            say(format!("  mixed-4000: stampede failed: {}", m.stderr.trim()));
            return None;
        }
        Err(e) => {
            say(format!("  mixed-4000: {e:#}"));
            return None;
        }
    };
    drop(m);
    let r = match stampede_loadgen::results::Results::read(&out) {
        Ok(r) => r,
        Err(e) => {
            say(format!("  mixed-4000: reading its results: {e:#}"));
            return None;
        }
    };
    let row = MixedRow {
        users: r.load.peak_target,
        peak_streams_open: r.sse.peak_open + r.mcp.peak_open,
        requests: r.totals.count,
        failure_rate: if r.totals.count > 0 {
            r.totals.failed as f64 / r.totals.count as f64
        } else {
            0.0
        },
        generator_cpu_s: r.generator.cpu_seconds,
        peak_rss_bytes: r.generator.peak_rss_bytes,
    };
    say(format!(
        "  mixed-4000: {} users, {} streams open at the peak, {} requests, {:.3} % failed, generator peak RSS {}",
        row.users,
        row.peak_streams_open,
        row.requests,
        row.failure_rate * 100.0,
        row.peak_rss_bytes
            .map_or("not measured".into(), |b| format!("{:.1} MiB", b as f64 / 1048576.0))
    ));
    Some(row)
}
