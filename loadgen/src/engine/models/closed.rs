//! The closed model: a controller keeps the number of running users at the stage's target (linear
//! ramps), each user looping over the weighted mix with think time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::time::Instant;

use super::{Backoff, CONTROL_TICK, Present, join_until_hard_stop, rng_for};
use crate::actions::{Ended, Scratch};
use crate::engine::Ctx;

/// Run the closed model until the load's stages end or the soft stop.
pub async fn run(ctx: Arc<Ctx>, start: Instant) {
    let target = Arc::new(AtomicUsize::new(0));
    let mut users: Vec<Option<tokio::task::JoinHandle<()>>> = Vec::new();
    let mut stop = ctx.env.soft_stop.clone();
    let total = ctx.load_duration;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= total || *stop.borrow() || ctx.budget.spent() {
            break;
        }
        let want = wanted(&ctx, elapsed);
        target.store(want, Ordering::Relaxed);
        for idx in 0..want {
            if idx >= users.len() {
                users.push(None);
            }
            let running = users[idx].as_ref().is_some_and(|h| !h.is_finished());
            if !running {
                let target = Arc::clone(&target);
                users[idx] = Some(ctx.load.spawn(idx, user(Arc::clone(&ctx), idx, target)));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(CONTROL_TICK) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    // With a budget spent, users finish their last action and leave by themselves.
    if !ctx.budget.spent() {
        target.store(0, Ordering::Relaxed);
    }
    join_until_hard_stop(users.into_iter().flatten(), ctx.hard_stop.clone()).await;
}

/// The users wanted now (this shard's whole users of the whole run's, all of them for an unsharded
/// run), the phase and level set on the way.
pub(super) fn wanted(ctx: &Ctx, elapsed: std::time::Duration) -> usize {
    let (level, phase) = ctx.scenario.load.at(elapsed);
    let want = ctx.scenario.shard.part(level.round().max(0.0) as usize);
    ctx.set_phase(phase, want as f64);
    want
}

/// One virtual user: pick an action, run it, think, again — until its index is above the target or
/// the load stops. An action cut by the hard stop (its task aborted) is counted aborted.
async fn user(ctx: Arc<Ctx>, idx: usize, target: Arc<AtomicUsize>) {
    let gauges = &ctx.env.recorder.gauges;
    let _present = Present::enter(&gauges.users);
    let mut rng = rng_for(&ctx, idx);
    let mut scratch = Scratch::default();
    let mut backoff = Backoff::default();
    let mut soft = ctx.env.soft_stop.clone();
    while idx < target.load(Ordering::Relaxed) && !ctx.env.load_ended.load(Ordering::Relaxed) && ctx.budget.take() {
        let action = ctx.pick(&mut rng);
        let ended = ctx.execute(action, &mut rng, &mut scratch, Instant::now()).await;
        let pause = match ended {
            Ended::Unreachable => backoff.fail(),
            Ended::Done(_) => {
                backoff.succeed();
                ctx.scenario.load.think_time.sample(&mut rng)
            }
        };
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = soft.wait_for(|s| *s) => {}
            }
        }
    }
}
