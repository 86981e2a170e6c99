//! The generator rows split the machine's cores: the target runs on one half, each tool on the other
//! with a thread per core there (wrk `-t`, oha `--worker-threads`, stampede `--threads`), as on a load
//! machine of its own. Sharing the cores, where the scheduler put the tool's threads and the server's
//! workers decided, run by run, who paid which wake-up: eight 5 s runs of the same build against nginx
//! at 64 connections made 95k–163k requests per CPU-second; pinned, 118k–141k (docs/bench.md).

use std::os::unix::process::CommandExt as _;
use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Where each tool runs; its thread count.
    pub generator: Vec<usize>,
    /// Where the target runs (nginx with a worker per core).
    pub target: Vec<usize>,
}

impl Split {
    /// The cores this process may use, halved (the generator's half the smaller); `None` on one core.
    pub fn here() -> Option<Split> {
        let cores = allowed()?;
        if cores.len() < 2 {
            return None;
        }
        let (generator, target) = cores.split_at(cores.len() / 2);
        Some(Split {
            generator: generator.to_vec(),
            target: target.to_vec(),
        })
    }
}

/// A list of cores as people write it: `0`, `0,1`, `0-3`.
pub fn describe(cores: &[usize]) -> String {
    match cores {
        [] => String::new(),
        [one] => one.to_string(),
        [first, .., last] if last - first + 1 == cores.len() => format!("{first}-{last}"),
        _ => cores.iter().map(usize::to_string).collect::<Vec<_>>().join(","),
    }
}

/// The cores this process may run on.
fn allowed() -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data the kernel fills in; CPU_ISSET reads it within its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        Some(
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect(),
        )
    }
}

/// `cmd`'s process, and every process and thread it starts, runs on `cores` only.
pub fn pin(cmd: &mut Command, cores: &[usize]) {
    // SAFETY: as in `allowed`; CPU_SET writes within the set's size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cores {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: between fork and exec only sched_setaffinity runs, which is async-signal-safe; the set
    // is a copy the closure owns.
    unsafe {
        cmd.pre_exec(move || {
            if libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_written_as_people_write_them() {
        assert_eq!(describe(&[1]), "1");
        assert_eq!(describe(&[0, 1, 2, 3]), "0-3");
        assert_eq!(describe(&[0, 2]), "0,2");
    }

    #[test]
    fn a_pinned_process_sees_only_its_cores() {
        let Some(split) = Split::here() else {
            assert!(
                std::thread::available_parallelism().map_or(1, |n| n.get()) < 2,
                "cores to split"
            );
            return;
        };
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "grep Cpus_allowed_list /proc/self/status"]);
        pin(&mut cmd, &split.target);
        let out = cmd.output().expect("sh runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.split_whitespace().nth(1),
            Some(describe(&split.target).as_str()),
            "{text}"
        );
    }
}
