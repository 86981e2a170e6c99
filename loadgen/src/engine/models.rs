//! The two load models. Closed: a controller keeps the number of running users at the stage's target
//! (linear ramps), each user looping over the weighted mix with think time. Open: a scheduler emits
//! arrivals at the stage's rate into a short queue served by `max_in_flight` workers; an arrival that
//! finds the queue full is dropped and counted; latency counts from the intended start.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Ctx;
use crate::actions::{Ended, Scratch};

const CONTROL_TICK: Duration = Duration::from_millis(100);

/// Run the closed model until the load's stages end or the soft stop.
pub async fn closed(ctx: Arc<Ctx>, start: Instant) {
    let target = Arc::new(AtomicUsize::new(0));
    let mut users: Vec<Option<tokio::task::JoinHandle<()>>> = Vec::new();
    let mut stop = ctx.env.soft_stop.clone();
    let total = ctx.load_duration;
    loop {
        let elapsed = start.elapsed();
        if elapsed >= total || *stop.borrow() {
            break;
        }
        let (level, phase) = ctx.scenario.load.at(elapsed);
        ctx.set_phase(phase, level);
        let want = level.round().max(0.0) as usize;
        target.store(want, Ordering::Relaxed);
        for idx in 0..want {
            if idx >= users.len() {
                users.push(None);
            }
            let running = users[idx].as_ref().is_some_and(|h| !h.is_finished());
            if !running {
                let ctx = Arc::clone(&ctx);
                let target = Arc::clone(&target);
                users[idx] = Some(tokio::spawn(user(ctx, idx, target)));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(CONTROL_TICK) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    target.store(0, Ordering::Relaxed);
    for handle in users.into_iter().flatten() {
        let _ = handle.await;
    }
}

/// One virtual user: pick an action, run it, think, again — until its index is above the target or
/// the load stops. An action cut by the hard stop is not recorded.
async fn user(ctx: Arc<Ctx>, idx: usize, target: Arc<AtomicUsize>) {
    ctx.env.recorder.gauges.users.fetch_add(1, Ordering::Relaxed);
    let mut rng = fastrand::Rng::with_seed(ctx.seed ^ (idx as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut scratch = Scratch::default();
    let mut backoff = Backoff::default();
    let mut soft = ctx.env.soft_stop.clone();
    let mut hard = ctx.hard_stop.clone();
    while idx < target.load(Ordering::Relaxed) && !*soft.borrow() {
        let action = ctx.pick(&mut rng);
        let ended = tokio::select! {
            ended = ctx.execute(action, &mut rng, &mut scratch, Instant::now()) => Some(ended),
            _ = hard.wait_for(|s| *s) => None,
        };
        let pause = match ended {
            None => {
                ctx.env.recorder.gauges.cut.fetch_add(1, Ordering::Relaxed);
                break;
            }
            Some(Ended::Unreachable) => backoff.fail(),
            Some(Ended::Done(_)) => {
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
    ctx.env.recorder.gauges.users.fetch_sub(1, Ordering::Relaxed);
}

/// Run the open model until the stages end or the soft stop.
pub async fn open(ctx: Arc<Ctx>, start: Instant) {
    let workers = ctx.scenario.load.max_in_flight as usize;
    let (tx, rx) = async_channel::bounded::<Instant>(workers.clamp(16, 1024));
    let mut pool = JoinSet::new();
    for w in 0..workers {
        let ctx = Arc::clone(&ctx);
        let rx = rx.clone();
        pool.spawn(async move {
            let mut rng = fastrand::Rng::with_seed(ctx.seed ^ (w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut scratch = Scratch::default();
            let mut hard = ctx.hard_stop.clone();
            while let Ok(intended) = rx.recv().await {
                if *ctx.env.soft_stop.borrow() {
                    // Arrivals still queued when the load ends are not started.
                    continue;
                }
                let action = ctx.pick(&mut rng);
                tokio::select! {
                    _ = ctx.execute(action, &mut rng, &mut scratch, intended) => {}
                    _ = hard.wait_for(|s| *s) => {
                        ctx.env.recorder.gauges.cut.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        });
    }
    drop(rx);

    let mut stop = ctx.env.soft_stop.clone();
    let total = ctx.load_duration;
    let mut next = start;
    loop {
        let now = Instant::now();
        if now.duration_since(start) >= total || *stop.borrow() {
            break;
        }
        // Emit every arrival that is due; at high rates several per wake-up.
        while next <= now {
            let (rate, phase) = ctx.scenario.load.at(next.duration_since(start));
            ctx.set_phase(phase, rate);
            if rate <= 0.0 {
                next += CONTROL_TICK;
                continue;
            }
            if tx.try_send(next).is_err() {
                ctx.env.recorder.gauges.dropped.fetch_add(1, Ordering::Relaxed);
            }
            next += Duration::from_secs_f64(1.0 / rate);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    tx.close();
    while pool.join_next().await.is_some() {}
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
