//! The open model: a scheduler emits arrivals at the stage's rate into a short queue served by
//! `max_in_flight` workers; an arrival that finds the queue full is dropped and counted; latency
//! counts from the intended start.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{CONTROL_TICK, hard_stopped, rng_for};
use crate::actions::Scratch;
use crate::engine::Ctx;

/// Run the open model until the stages end or the soft stop.
pub async fn run(ctx: Arc<Ctx>, start: Instant) {
    let shard = ctx.scenario.shard;
    let workers = shard.part(ctx.scenario.load.max_in_flight as usize).max(1);
    let (tx, rx) = async_channel::bounded::<Instant>(workers.clamp(16, 1024));
    let mut pool = JoinSet::new();
    for w in 0..workers {
        let on = ctx.load.handle(w).clone();
        let ctx = Arc::clone(&ctx);
        let rx = rx.clone();
        pool.spawn_on(
            async move {
                let mut rng = rng_for(&ctx, w);
                let mut scratch = Scratch::default();
                while let Ok(intended) = rx.recv().await {
                    if ctx.env.load_ended.load(Ordering::Relaxed) {
                        // Arrivals still queued when the load ends are not started.
                        continue;
                    }
                    let action = ctx.pick(&mut rng);
                    ctx.execute(action, &mut rng, &mut scratch, intended).await;
                }
            },
            &on,
        );
    }
    drop(rx);

    let mut stop = ctx.env.soft_stop.clone();
    let total = ctx.load_duration;
    let mut next = start;
    // The place of `next` in the whole run's schedule: a shard emits the arrivals it owns.
    let mut k: u64 = 0;
    'arrivals: loop {
        let now = Instant::now();
        if now.duration_since(start) >= total || *stop.borrow() {
            break;
        }
        // Emit every arrival that is due; at high rates several per wake-up.
        while next <= now {
            let (rate, phase) = ctx.scenario.load.at(next.duration_since(start));
            ctx.set_phase(phase, shard.share(rate));
            if rate <= 0.0 {
                next += CONTROL_TICK;
                continue;
            }
            if shard.owns(k) {
                if !ctx.budget.take() {
                    break 'arrivals;
                }
                if tx.try_send(next).is_err() {
                    ctx.env.recorder.gauges.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            k += 1;
            next += Duration::from_secs_f64(1.0 / rate);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    tx.close();
    // Until the hard stop the workers finish what they run; then the rest is aborted (and counted aborted).
    let mut hard = ctx.hard_stop.clone();
    loop {
        tokio::select! {
            next = pool.join_next() => if next.is_none() { break },
            () = hard_stopped(&mut hard) => {
                pool.abort_all();
                while pool.join_next().await.is_some() {}
                break;
            }
        }
    }
}
