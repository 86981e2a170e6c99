//! The target's CPU: read from /proc when it is a local process (with its descendants when asked),
//! as a percentage of one core per window. Replicas are summed; a window in which one of them is
//! gone is not measured (a sum without it would read as a quiet target). (Without a pid, the metrics observer reads it from
//! `process_cpu_seconds_total` with the same `CpuRate`.)

use tokio::time::Instant;

use super::{Observer, Registration, Windows, max, mean};
use crate::data::{Observed, ObservedSummary, Sources};
use std::time::Duration;

pub const OBSERVER: Registration = Registration {
    start: |config, _| {
        if config.pids.is_empty() {
            return None;
        }
        let mut rate = CpuRate::default();
        let proc = ProcCpu {
            pids: config.pids.clone(),
            children: config.children,
        };
        rate.next(proc.read());
        Some(Box::new(Cpu { proc, rate }))
    },
    summarize,
};

/// The shortest interval a CPU percentage is computed over.
const MIN_CPU_WINDOW: Duration = Duration::from_millis(500);

/// A percentage of one core from successive cumulative readings (CPU seconds at an instant).
#[derive(Debug, Default)]
pub struct CpuRate {
    last: Option<(Instant, f64)>,
}

impl CpuRate {
    /// The percentage since the last reading kept, given the reading now.
    pub fn next(&mut self, now: Option<(Instant, f64)>) -> Option<f64> {
        // /proc counts CPU in 10 ms ticks: over a very short window (the last, partial one) the quotient
        // is quantization noise (280 % of a core on 2 cores was seen), so such a window is not measured
        // and the next one starts from the same reading.
        let pct = match (self.last, now) {
            (Some((t0, c0)), Some((t1, c1))) if t1.duration_since(t0) >= MIN_CPU_WINDOW => {
                Some(((c1 - c0) / (t1 - t0).as_secs_f64() * 100.0).max(0.0))
            }
            _ => None,
        };
        if now.is_some() && (pct.is_some() || self.last.is_none()) {
            self.last = now;
        }
        pct
    }
}

struct ProcCpu {
    pids: Vec<u32>,
    children: bool,
}

impl ProcCpu {
    /// (when, CPU seconds) of the processes (and their descendants) now; `None` when one is gone.
    fn read(&self) -> Option<(Instant, f64)> {
        let mut total = 0.0;
        for &pid in &self.pids {
            total += crate::host::cpu_seconds_of(&pid.to_string())?;
            if self.children {
                total += crate::host::descendants(pid)
                    .iter()
                    .filter_map(|c| crate::host::cpu_seconds_of(&c.to_string()))
                    .sum::<f64>();
            }
        }
        Some((Instant::now(), total))
    }
}

struct Cpu {
    proc: ProcCpu,
    rate: CpuRate,
}

impl Observer for Cpu {
    fn window(&mut self, o: &mut Observed) {
        o.cpu_pct = self.rate.next(self.proc.read());
    }

    fn source(&self, sources: &mut Sources) {
        sources.cpu = Some(super::pid_source(&self.proc.pids, self.proc.children));
    }
}

/// Mean and peak over the load and the post-load window, and the settled post-load mean.
fn summarize(w: &Windows<'_>, s: &mut ObservedSummary) {
    let cpu = |f: &dyn Fn(u64, bool) -> bool| -> Vec<f64> {
        w.windows
            .iter()
            .filter(|(t, p, _)| f(*t, *p))
            .filter_map(|(_, _, o)| o.cpu_pct)
            .collect()
    };
    let load = cpu(&|_, post| !post);
    let post = cpu(&|_, post| post);
    let settled = cpu(&|t, post| w.settled(t, post));
    s.cpu_load_mean_pct = mean(&load);
    s.cpu_load_max_pct = max(&load);
    s.cpu_post_load_mean_pct = mean(&post);
    s.cpu_post_load_max_pct = max(&post);
    s.cpu_post_load_settled_mean_pct = mean(&settled);
    s.settle_s = w.settle.as_secs_f64();
}
