//! What users run with: the context every user and worker shares once a run is prepared — the
//! target as actions reach it, the recorder, the pools, the stops — and one action's execution.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{models, threads};
use crate::actions::{Action, Ended, Env, Scratch, Slots};
use crate::data::Phase;
use crate::scenario::Scenario;
use crate::setup::{PoolValues, Pools};

/// Everything a user or worker needs, shared.
pub struct Ctx {
    pub scenario: Arc<Scenario>,
    /// What the actions reach: the target, the recorder, the end of the load.
    pub env: Env,
    pub pools: Pools,
    pub seed: u64,
    pub load_duration: Duration,
    /// Actions left to start, when the load is a number of them (`load.iterations`, `-n`).
    pub budget: models::Budget,
    /// End of the graceful stop: actions still running are cut.
    pub hard_stop: watch::Receiver<bool>,
    /// The threads users run on (`threads.rs`).
    pub load: threads::Spawner,
    pub(super) cumulative: Vec<u64>,
    /// Recording slots of each action.
    pub(super) slots: Vec<Slots>,
    pub(super) phase: AtomicU8,
    pub(super) level_bits: AtomicU64,
}

pub(super) fn phase_code(p: Phase) -> u8 {
    match p {
        Phase::RampUp => 0,
        Phase::Steady => 1,
        Phase::RampDown => 2,
        Phase::PostLoad => 3,
    }
}

fn phase_of(code: u8) -> Phase {
    match code {
        0 => Phase::RampUp,
        1 => Phase::Steady,
        2 => Phase::RampDown,
        _ => Phase::PostLoad,
    }
}

impl Ctx {
    /// A weighted random action.
    pub fn pick(&self, rng: &mut fastrand::Rng) -> usize {
        let total = *self.cumulative.last().expect("validated: at least one action");
        let x = rng.u64(0..total);
        self.cumulative.partition_point(|c| *c <= x)
    }

    pub fn set_phase(&self, phase: Phase, level: f64) {
        self.phase.store(phase_code(phase), Ordering::Relaxed);
        self.level_bits.store(level.to_bits(), Ordering::Relaxed);
    }

    pub fn phase(&self) -> (Phase, f64) {
        (
            phase_of(self.phase.load(Ordering::Relaxed)),
            f64::from_bits(self.level_bits.load(Ordering::Relaxed)),
        )
    }

    /// Run action `index` once.
    pub async fn execute(
        &self,
        index: usize,
        rng: &mut fastrand::Rng,
        scratch: &mut Scratch,
        intended: Instant,
    ) -> Ended {
        let action: &Action = &self.scenario.actions[index];
        let mut values = PoolValues {
            pools: &self.pools,
            rng,
            unique: [0; 16],
        };
        let in_flight = &self.env.recorder.gauges.in_flight;
        in_flight.add(1);
        let _done = InFlight(in_flight);
        let slots = self.slots[index];
        let running = Running {
            recorder: &self.env.recorder,
            slot: slots.main,
        };
        let ended = action.plan.run(&self.env, slots, &mut values, scratch, intended).await;
        std::mem::forget(running);
        ended
    }
}

/// An action under way: counted aborted when dropped unfinished, i.e. when the hard stop aborts its
/// user's task. The hard stop aborts tasks rather than racing every action against a watch channel, so
/// an action costs no waiter registered and removed on a channel every user shares.
struct Running<'a> {
    recorder: &'a crate::record::Recorder,
    slot: usize,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.recorder.abort(self.slot);
    }
}

/// Decrements the in-flight gauge however the action ends (aborted included).
struct InFlight<'a>(&'a crate::record::SpreadGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}
