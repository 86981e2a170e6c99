//! The target's resources: resident memory, open file descriptors and threads from /proc/<pid>
//! (replicas summed, with descendants when asked; a window in which one replica is gone is not
//! measured, as for CPU), and its TCP sockets by state on its listening ports, from /proc/net/tcp and
//! tcp6. Sockets are counted by local port, not by the process's socket inodes: a TIME_WAIT socket
//! belongs to no process.
//!
//! What it answers: does memory or the descriptor count keep growing once the load has run a while
//! (a leak), and does the target close the connections its clients closed (CLOSE_WAIT that stays after
//! the load is a connection it leaks)?
//!
//! Read once a second on a blocking thread, not in `window`: a target holding 20,000 connections has as
//! many descriptors to list and socket rows to parse, which the run loop's runtime should not wait on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{ObserveConfig, Observer, Registration, Windows, max, mean};
use crate::data::{Observed, ObservedSummary, Sources};

pub const OBSERVER: Registration = Registration { start, summarize };

fn start(config: &ObserveConfig, _: &reqwest::Client) -> Option<Box<dyn Observer>> {
    if config.pids.is_empty() && config.ports.is_empty() {
        return None;
    }
    let targets = Arc::new(Targets {
        pids: config.pids.clone(),
        children: config.children,
        ports: config.ports.clone(),
    });
    let latest = Arc::new(Latest::default());
    let task = tokio::spawn(sample(Arc::clone(&targets), Arc::clone(&latest)));
    Some(Box::new(Resources { targets, latest, task }))
}

/// The target's sockets on its listening ports, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStates {
    pub established: u32,
    pub close_wait: u32,
    pub time_wait: u32,
}

/// One reading of everything; each figure `None` when it could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Reading {
    rss_bytes: Option<u64>,
    fds: Option<u32>,
    threads: Option<u32>,
    tcp: Option<TcpStates>,
}

impl Reading {
    fn put(&self, o: &mut Observed) {
        o.target_rss_bytes = self.rss_bytes;
        o.target_fds = self.fds;
        o.target_threads = self.threads;
        o.tcp_established = self.tcp.map(|t| t.established);
        o.tcp_close_wait = self.tcp.map(|t| t.close_wait);
        o.tcp_time_wait = self.tcp.map(|t| t.time_wait);
    }
}

/// What is read.
struct Targets {
    pids: Vec<u32>,
    children: bool,
    ports: Vec<u16>,
}

impl Targets {
    fn read(&self) -> Reading {
        let mut r = Reading {
            tcp: self.tcp(),
            ..Reading::default()
        };
        if self.pids.is_empty() {
            return r;
        }
        (r.rss_bytes, r.fds, r.threads) = (Some(0), Some(0), Some(0));
        for &pid in &self.pids {
            let p = process(pid);
            // A replica gone: the sum without it would read as a smaller target.
            r.rss_bytes = r.rss_bytes.zip(p.rss_bytes).map(|(a, b)| a + b);
            r.fds = r.fds.zip(p.fds).map(|(a, b)| a + b);
            r.threads = r.threads.zip(p.threads).map(|(a, b)| a + b);
            if self.children {
                // A descendant may exit between listing and reading: what it leaves unread is left out.
                for c in crate::host::descendants(pid).into_iter().map(process) {
                    r.rss_bytes = r.rss_bytes.map(|a| a + c.rss_bytes.unwrap_or(0));
                    r.fds = r.fds.map(|a| a + c.fds.unwrap_or(0));
                    r.threads = r.threads.map(|a| a + c.threads.unwrap_or(0));
                }
            }
        }
        r
    }

    fn tcp(&self) -> Option<TcpStates> {
        if self.ports.is_empty() {
            return None;
        }
        let v4 = std::fs::read_to_string("/proc/net/tcp").ok();
        let v6 = std::fs::read_to_string("/proc/net/tcp6").ok();
        tcp_states([v4.as_deref(), v6.as_deref()].into_iter().flatten(), &self.ports)
    }
}

/// One process's figures from /proc; all `None` when it is gone (or a zombie: exited, not reaped).
fn process(pid: u32) -> Reading {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Reading::default();
    };
    if status_field(&status, "State:").is_some_and(|s| s.starts_with('Z')) {
        return Reading::default();
    }
    let number = |key: &str| {
        status_field(&status, key)?
            .trim_end_matches("kB")
            .trim()
            .parse::<u64>()
            .ok()
    };
    Reading {
        rss_bytes: number("VmRSS:").map(|kib| kib * 1024),
        threads: number("Threads:").and_then(|n| u32::try_from(n).ok()),
        // Another user's process without the right to look: not measured.
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()
            .map(|d| u32::try_from(d.count()).unwrap_or(u32::MAX)),
        tcp: None,
    }
}

/// The value of `key` (`"VmRSS:"`) in /proc/<pid>/status text.
fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(key)).map(str::trim)
}

/// The rows of /proc/net/tcp or tcp6 texts whose local port is one of `ports`, counted by state;
/// `None` when none of them is a listener on those ports: the target is then not on this machine (or
/// in another network namespace), and nothing seen here would be its.
pub fn tcp_states<'a>(texts: impl IntoIterator<Item = &'a str>, ports: &[u16]) -> Option<TcpStates> {
    let mut states = TcpStates::default();
    let mut listening = false;
    for line in texts.into_iter().flat_map(str::lines) {
        // `sl local_address rem_address st ...`; an address is `HEX_IP:HEX_PORT` in both files.
        let mut fields = line.split_whitespace().skip(1);
        let (Some(local), Some(state)) = (fields.next(), fields.nth(1)) else {
            continue;
        };
        // The header's `local_address` has no port and is passed over here.
        let Some(port) = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        else {
            continue;
        };
        if !ports.contains(&port) {
            continue;
        }
        match state {
            "01" => states.established += 1,
            "06" => states.time_wait += 1,
            "08" => states.close_wait += 1,
            "0A" => listening = true,
            _ => {}
        }
    }
    listening.then_some(states)
}

/// The latest reading, replaced once a second.
#[derive(Default)]
struct Latest {
    reading: Mutex<Option<Reading>>,
    /// The first reading is in.
    tried: AtomicBool,
}

async fn sample(targets: Arc<Targets>, latest: Arc<Latest>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let t = Arc::clone(&targets);
        let reading = tokio::task::spawn_blocking(move || t.read()).await.ok();
        *latest.reading.lock().expect("resources lock") = reading;
        latest.tried.store(true, Ordering::Release);
    }
}

struct Resources {
    targets: Arc<Targets>,
    latest: Arc<Latest>,
    task: JoinHandle<()>,
}

impl Drop for Resources {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Resources {
    fn put(&self, o: &mut Observed) {
        if let Some(r) = *self.latest.reading.lock().expect("resources lock") {
            r.put(o);
        }
    }
}

impl Observer for Resources {
    fn window(&mut self, o: &mut Observed) {
        self.put(o);
    }

    fn ready(&self) -> bool {
        self.latest.tried.load(Ordering::Acquire)
    }

    fn before(&self, o: &mut Observed) {
        self.put(o);
    }

    fn source(&self, sources: &mut Sources) {
        let t = &self.targets;
        let mut parts = Vec::new();
        if !t.pids.is_empty() {
            parts.push(super::pid_source(&t.pids, t.children));
        }
        if !t.ports.is_empty() {
            let ports: Vec<String> = t.ports.iter().map(u16::to_string).collect();
            let s = if ports.len() > 1 { "s" } else { "" };
            parts.push(format!("TCP on port{s} {}", ports.join(", ")));
        }
        sources.resources = Some(parts.join("; "));
    }
}

/// Fewer points than this make no slope: a few seconds' noise is not a trend.
const MIN_SLOPE_POINTS: usize = 10;

/// One figure over the run.
#[derive(Debug, Default, PartialEq)]
struct Figure {
    before: Option<f64>,
    load_max: Option<f64>,
    settled: Option<f64>,
    slope_per_min: Option<f64>,
}

/// `f` before the load, its most during the load, its mean once the post-load window settled, and its
/// slope from the middle of the load on (the first half is warm-up: pools and caches fill).
fn figure(w: &Windows<'_>, f: impl Fn(&Observed) -> Option<f64>) -> Figure {
    let points = |keep: &dyn Fn(u64, bool) -> bool| -> Vec<(f64, f64)> {
        w.windows
            .iter()
            .filter(|(t, post, _)| keep(*t, *post))
            .filter_map(|(t, _, o)| Some((*t as f64, f(o)?)))
            .collect()
    };
    let values = |p: Vec<(f64, f64)>| -> Vec<f64> { p.into_iter().map(|(_, v)| v).collect() };
    Figure {
        before: w.before.and_then(&f),
        load_max: max(&values(points(&|_, post| !post))),
        settled: mean(&values(points(&|t, post| w.settled(t, post)))),
        slope_per_min: slope(&points(&|t, _| t as f64 >= w.load_end_s / 2.0)).map(|s| s * 60.0),
    }
}

/// The least-squares slope of `(x, y)` points, per unit of x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < MIN_SLOPE_POINTS {
        return None;
    }
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// `v` to `places` decimals.
fn rounded(v: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (v * k).round() / k
}

/// A figure read as a whole number (a maximum of counts is one).
fn whole<T: TryFrom<u64>>(v: Option<f64>) -> Option<T> {
    v.and_then(|v| T::try_from(v.round() as u64).ok())
}

fn summarize(w: &Windows<'_>, s: &mut ObservedSummary) {
    let r = &mut s.resources;
    let count = |v: Option<f64>| v.map(|v| rounded(v, 1));

    let rss = figure(w, |o| o.target_rss_bytes.map(|v| v as f64));
    r.target_rss_before_bytes = whole(rss.before);
    r.target_rss_load_max_bytes = whole(rss.load_max);
    r.target_rss_settled_bytes = whole(rss.settled);
    r.target_rss_slope_bytes_per_min = rss.slope_per_min.map(f64::round);

    let fds = figure(w, |o| o.target_fds.map(f64::from));
    r.target_fds_before = whole(fds.before);
    r.target_fds_load_max = whole(fds.load_max);
    r.target_fds_settled = count(fds.settled);
    r.target_fds_settled_growth_pct = fds
        .settled
        .zip(fds.before.filter(|b| *b > 0.0))
        .map(|(settled, before)| rounded((settled - before) / before * 100.0, 2));
    r.target_fds_slope_per_min = fds.slope_per_min.map(|v| rounded(v, 2));

    let threads = figure(w, |o| o.target_threads.map(f64::from));
    r.target_threads_before = whole(threads.before);
    r.target_threads_load_max = whole(threads.load_max);
    r.target_threads_settled = count(threads.settled);

    let close_wait = figure(w, |o| o.tcp_close_wait.map(f64::from));
    r.close_wait_before = whole(close_wait.before);
    r.close_wait_load_max = whole(close_wait.load_max);
    r.close_wait_settled = count(close_wait.settled);

    let established = figure(w, |o| o.tcp_established.map(f64::from));
    r.established_load_max = whole(established.load_max);
    r.established_settled = count(established.settled);

    let time_wait = figure(w, |o| o.tcp_time_wait.map(f64::from));
    r.time_wait_load_max = whole(time_wait.load_max);
    r.time_wait_settled = count(time_wait.settled);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two listeners (4001 on IPv4, 4002 on IPv6), a client's own socket whose remote port is 4001
    /// (not the target's), and another server's sockets on 5000.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0FA1 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 101 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0FA1 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 102 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:0FA1 0100007F:C351 08 00000000:00000000 00:00000000 00000000  1000        0 103 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:0FA1 0100007F:C352 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000
   4: 0100007F:C353 0100007F:0FA1 01 00000000:00000000 00:00000000 00000000  1000        0 104 1 0000000000000000 20 4 30 10 -1
   5: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 105 1 0000000000000000 100 0 0 10 0
   6: 0100007F:1388 0100007F:C354 08 00000000:00000000 00:00000000 00000000  1000        0 106 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0FA2 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 201 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0FA2 0000000000000000FFFF00000100007F:D000 01 00000000:00000000 00:00000000 00000000  1000        0 202 1 0000000000000000 20 4 30 10 -1
   2: 00000000000000000000000001000000:0FA2 00000000000000000000000001000000:D001 08 00000000:00000000 00:00000000 00000000  1000        0 203 1 0000000000000000 20 4 30 10 -1
   3: 00000000000000000000000001000000:0FA2 00000000000000000000000001000000:D002 06 00000000:00000000 03:00000BB8 00000000     0        0 0 3 0000000000000000
";

    #[test]
    fn sockets_are_counted_by_local_port_and_state_in_both_files() {
        let both = tcp_states([TCP, TCP6], &[4001, 4002]).unwrap();
        assert_eq!(
            both,
            TcpStates {
                established: 2,
                close_wait: 2,
                time_wait: 2
            }
        );
        let v4 = tcp_states([TCP, TCP6], &[4001]).unwrap();
        assert_eq!((v4.established, v4.close_wait, v4.time_wait), (1, 1, 1));
        let v6 = tcp_states([TCP6], &[4002]).unwrap();
        assert_eq!((v6.established, v6.close_wait, v6.time_wait), (1, 1, 1));
        // No listener on the port in view: the target is elsewhere, and nothing is measured.
        assert_eq!(tcp_states([TCP, TCP6], &[4003]), None);
        assert_eq!(tcp_states([TCP6], &[4001]), None);
        assert_eq!(tcp_states(["garbage", ""], &[4001]), None);
    }

    #[test]
    fn status_fields_are_read() {
        let status = "Name:\tgateway\nState:\tS (sleeping)\nVmRSS:\t   22016 kB\nThreads:\t3\n";
        assert_eq!(status_field(status, "VmRSS:"), Some("22016 kB"));
        assert_eq!(status_field(status, "Threads:"), Some("3"));
        assert_eq!(status_field(status, "VmSwap:"), None);
    }

    #[test]
    fn this_process_reads_and_a_gone_one_does_not() {
        let me = process(std::process::id());
        assert!(me.rss_bytes.unwrap() > 0 && me.fds.unwrap() > 0 && me.threads.unwrap() >= 1);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(process(pid), Reading::default());
    }

    fn seen(rss_mib: f64, fds: u32, close_wait: u32) -> Observed {
        Observed {
            target_rss_bytes: Some((rss_mib * 1024.0 * 1024.0) as u64),
            target_fds: Some(fds),
            target_threads: Some(3),
            tcp_established: Some(fds - 10),
            tcp_close_wait: Some(close_wait),
            tcp_time_wait: Some(0),
            ..Observed::default()
        }
    }

    fn summary(before: Option<&Observed>, windows: &[(u64, bool, &Observed)], load_end_s: f64) -> ObservedSummary {
        let w = Windows {
            before,
            windows,
            load_end_s,
            settle: Duration::from_secs(2),
        };
        let mut s = ObservedSummary::default();
        summarize(&w, &mut s);
        s
    }

    #[test]
    fn before_load_max_settled_slope_and_growth() {
        let before = seen(20.0, 12, 0);
        // 20 s of load in which memory grows 1 MiB a second and files 2 a second, then 10 s after:
        // files back to 13 (1 leaked), memory keeps what it took, CLOSE_WAIT left behind.
        let observed: Vec<(u64, bool, Observed)> = (1..=30)
            .map(|t| {
                let o = if t <= 20 {
                    seen(20.0 + t as f64, 12 + 2 * t as u32, if t == 20 { 14 } else { 1 })
                } else {
                    seen(40.0, 13, 4)
                };
                (t, t > 20, o)
            })
            .collect();
        let windows: Vec<(u64, bool, &Observed)> = observed.iter().map(|(t, p, o)| (*t, *p, o)).collect();
        let r = summary(Some(&before), &windows, 20.0).resources;
        const MIB: u64 = 1024 * 1024;
        assert_eq!(r.target_rss_before_bytes, Some(20 * MIB));
        assert_eq!(r.target_rss_load_max_bytes, Some(40 * MIB));
        assert_eq!(r.target_rss_settled_bytes, Some(40 * MIB));
        assert_eq!(r.target_fds_before, Some(12));
        assert_eq!(r.target_fds_load_max, Some(52));
        assert_eq!(r.target_fds_settled, Some(13.0));
        assert_eq!(r.target_fds_settled_growth_pct, Some(8.33));
        assert_eq!((r.target_threads_before, r.target_threads_load_max), (Some(3), Some(3)));
        assert_eq!(r.target_threads_settled, Some(3.0));
        assert_eq!(
            (r.close_wait_before, r.close_wait_load_max, r.close_wait_settled),
            (Some(0), Some(14), Some(4.0))
        );
        assert_eq!((r.established_load_max, r.established_settled), (Some(42), Some(3.0)));
        assert_eq!((r.time_wait_load_max, r.time_wait_settled), (Some(0), Some(0.0)));
        // A steady rise over the whole measured span is its slope exactly.
        let rising: Vec<(u64, bool, Observed)> = (1..=20)
            .map(|t| (t, t > 10, seen(20.0 + t as f64, 12 + t as u32, 0)))
            .collect();
        let windows: Vec<(u64, bool, &Observed)> = rising.iter().map(|(t, p, o)| (*t, *p, o)).collect();
        let r = summary(None, &windows, 10.0).resources;
        assert_eq!(r.target_rss_slope_bytes_per_min, Some((60 * MIB) as f64));
        assert_eq!(r.target_fds_slope_per_min, Some(60.0));
        // No reading before the load: no before, no growth.
        assert_eq!((r.target_fds_before, r.target_fds_settled_growth_pct), (None, None));
    }

    #[test]
    fn unmeasured_stays_unmeasured_and_few_points_make_no_slope() {
        let idle = Observed::default();
        let windows: Vec<(u64, bool, &Observed)> = (1..=30).map(|t| (t, t > 20, &idle)).collect();
        let s = summary(Some(&idle), &windows, 20.0);
        assert_eq!(s.resources, crate::data::ResourcesSummary::default());

        let few: Vec<(u64, bool, Observed)> = (1..=12).map(|t| (t, t > 6, seen(20.0, 12, 0))).collect();
        let windows: Vec<(u64, bool, &Observed)> = few.iter().map(|(t, p, o)| (*t, *p, o)).collect();
        // The load ending at 6 s, t >= 3: 10 points make a slope; ending at 8 s, t >= 4: 9 do not.
        assert_eq!(
            summary(None, &windows, 6.0).resources.target_fds_slope_per_min,
            Some(0.0)
        );
        assert_eq!(summary(None, &windows, 8.0).resources.target_fds_slope_per_min, None);
    }
}
