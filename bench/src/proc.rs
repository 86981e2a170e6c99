//! Processes the bench starts: a tool run measured by the kernel (`wait4`'s rusage: user + system CPU
//! seconds and peak RSS of exactly that child — the same measure for every tool), and servers started
//! for the length of a section whose CPU is read from /proc around each run.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// What a finished tool run cost, as the kernel counted it.
#[derive(Debug, Clone)]
pub struct Measured {
    pub success: bool,
    pub wall: Duration,
    pub cpu_seconds: f64,
    /// Of which in user space, and in the kernel.
    pub user_seconds: f64,
    pub system_seconds: f64,
    pub peak_rss_bytes: u64,
    pub stdout: String,
    pub stderr: String,
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Run `cmd` to the end and measure it with `wait4` (its own rusage, not its siblings').
pub fn measure(cmd: &mut Command) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let out = drain(child.stdout.take().expect("piped"));
    let err = drain(child.stderr.take().expect("piped"));
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data the kernel fills in; the child is ours and not yet reaped (std's
    // `Child` never waits on drop), so wait4 reaps exactly it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = loop {
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        break rc;
    };
    if rc != pid {
        bail!("wait4 on {pid}: {}", std::io::Error::last_os_error());
    }
    let wall = started.elapsed();
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Measured {
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        wall,
        cpu_seconds: tv(usage.ru_utime) + tv(usage.ru_stime),
        user_seconds: tv(usage.ru_utime),
        system_seconds: tv(usage.ru_stime),
        // Linux reports ru_maxrss in KiB.
        peak_rss_bytes: usage.ru_maxrss as u64 * 1024,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// A server the bench started; SIGTERM and reaped on drop.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// Start `cmd` and wait for its first stdout line, `… listening on http://ADDR`.
    pub fn start(cmd: &mut Command) -> anyhow::Result<Server> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {:?}", cmd.get_program()))?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped"));
        let mut first = String::new();
        lines.read_line(&mut first)?;
        let Some(url) = stampede_loadgen::process::listening_url(&first).map(str::to_owned) else {
            let _ = child.kill();
            bail!("{:?} did not say where it listens (said {first:?})", cmd.get_program());
        };
        // Keep reading so a chatty server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
        Ok(Server { child, url })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU seconds the server has used so far (all its threads).
    pub fn cpu_seconds(&self) -> Option<f64> {
        stampede_loadgen::host::cpu_seconds_of(&self.pid().to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// SIGTERM a server the bench started (a server drains; nginx's master stops its workers), then reap
/// it, killing it after 10 s.
pub fn stop(child: &mut Child) {
    // SAFETY: a signal to our own child, which has not been reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One look at a process: when (since the sampler started), its resident memory and CPU seconds.
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub at: Duration,
    pub rss_bytes: u64,
    pub cpu_seconds: f64,
}

/// A thread looking at a process every 100 ms until stopped.
pub struct Sampler {
    /// When it started (the looks' times count from it).
    pub started: std::time::SystemTime,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Look>>,
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    Some(kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok()? * 1024)
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut looks = Vec::new();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let cpu = stampede_loadgen::host::cpu_seconds_of(&pid.to_string());
                if let (Some(rss_bytes), Some(cpu_seconds)) = (rss_of(pid), cpu) {
                    looks.push(Look {
                        at: started.elapsed(),
                        rss_bytes,
                        cpu_seconds,
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            looks
        });
        Sampler {
            started: std::time::SystemTime::now(),
            stop,
            thread,
        }
    }

    pub fn finish(self) -> Vec<Look> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
