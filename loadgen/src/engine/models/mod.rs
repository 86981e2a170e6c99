//! Load models: how users or arrivals are paced. Each is one module with a `run(ctx, start)` that
//! drives the load until its stages end or the soft stop; `spawn` below registers them by the
//! scenario's `load.model`.

mod closed;
mod direct;
mod open;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::Ctx;
use crate::data::RequestLoop;
use crate::scenario::Model;

/// How often a model re-reads its stage's target.
const CONTROL_TICK: Duration = Duration::from_millis(100);

/// Start the scenario's load model; which loop runs its users.
pub fn spawn(ctx: Arc<Ctx>, start: Instant) -> (JoinHandle<()>, RequestLoop) {
    match ctx.scenario.load.model {
        Model::Closed => match direct::plan(&ctx) {
            Some(plan) => (tokio::spawn(direct::run(ctx, start, plan)), RequestLoop::Direct),
            None => (tokio::spawn(closed::run(ctx, start)), RequestLoop::Tasks),
        },
        Model::Open => (tokio::spawn(open::run(ctx, start)), RequestLoop::Tasks),
    }
}

/// The actions left to start when the load is a number of them (`load.iterations`): taken one at a
/// time by every user or arrival; `None` costs nothing per action.
pub struct Budget(Option<AtomicU64>);

impl Budget {
    pub fn new(iterations: Option<u64>) -> Budget {
        Budget(iterations.map(AtomicU64::new))
    }

    /// Take one action's worth; false once all are taken.
    pub fn take(&self) -> bool {
        match &self.0 {
            None => true,
            Some(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// Every action has been given out.
    pub fn spent(&self) -> bool {
        self.0.as_ref().is_some_and(|left| left.load(Ordering::Relaxed) == 0)
    }
}

/// Counts one running user (or worker) for as long as it lives, aborted or not.
struct Present<'a>(&'a AtomicU64);

impl<'a> Present<'a> {
    fn enter(gauge: &'a AtomicU64) -> Present<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        Present(gauge)
    }
}

impl Drop for Present<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Wait for the tasks to end by themselves until the hard stop, then abort the rest and wait for
/// them to be dropped (so every aborted action is counted before the totals are read: `Ctx::execute`'s guard).
async fn join_until_hard_stop(handles: impl IntoIterator<Item = JoinHandle<()>>, mut hard: watch::Receiver<bool>) {
    for mut handle in handles {
        tokio::select! {
            _ = &mut handle => {}
            () = hard_stopped(&mut hard) => {
                handle.abort();
                let _ = handle.await;
            }
        }
    }
}

/// Ready once the hard stop is given (the channel's guard is not held past it).
async fn hard_stopped(hard: &mut watch::Receiver<bool>) {
    let _ = hard.wait_for(|s| *s).await;
}

/// A user's or worker's own random stream, different for each and reproducible from the run's seed.
fn rng_for(ctx: &Ctx, index: usize) -> fastrand::Rng {
    fastrand::Rng::with_seed(ctx.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Exponential backoff after connect failures: 100 ms doubling to 5 s, reset by a success.
#[derive(Debug, Default)]
pub struct Backoff {
    next: Option<Duration>,
}

impl Backoff {
    pub fn fail(&mut self) -> Duration {
        let d = self.next.unwrap_or(Duration::from_millis(100));
        self.next = Some((d * 2).min(Duration::from_secs(5)));
        d
    }

    pub fn succeed(&mut self) {
        self.next = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut b = Backoff::default();
        let steps: Vec<u128> = (0..8).map(|_| b.fail().as_millis()).collect();
        assert_eq!(steps, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.succeed();
        assert_eq!(b.fail(), Duration::from_millis(100));
    }
}
