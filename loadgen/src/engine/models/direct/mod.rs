//! The direct loop: the closed model's users as connections of one epoll loop per load thread (mio),
//! not as tokio tasks, when every action is a request that is the same each time (`FixedRequest`),
//! the think time zero — the load wrk and oha make (over http or https). Per request it costs a
//! write, a read and its share of one `epoll_wait`, and no wake, schedule or poll through an action's
//! futures: the bench measured the task-based loop at 0.91× wrk's requests per CPU-second, all of the
//! difference in user space (docs/bench.md). Every other scenario runs on tasks (`closed.rs`), and
//! `STAMPEDE_DIRECT_LOOP=off` makes this one do so too, to compare the two.
//!
//! Each load thread lends the loop its thread for the run: one task that does not yield until its
//! users are done. The controller here keeps `closed.rs`'s: the stage's level each tick, published as
//! the number of users wanted; each loop runs its share (user `i` on thread `i % threads`).

mod io;
mod user;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::time::Instant;

use super::{CONTROL_TICK, closed, hard_stopped};
use crate::actions::FixedRequest;
use crate::engine::Ctx;
use crate::scenario::Model;

/// What the loops share with the controller.
struct Shared {
    ctx: Arc<Ctx>,
    /// By action index.
    requests: Vec<FixedRequest>,
    /// Users wanted now.
    target: AtomicUsize,
    /// The controller is done: users leave once their request is answered.
    over: AtomicBool,
    /// The hard stop: requests in flight are cut (counted aborted) and the loops return.
    cut: AtomicBool,
}

/// What the direct loop runs: the scenario's requests, and an epoll per load thread.
pub struct Plan {
    requests: Vec<FixedRequest>,
    polls: Vec<mio::Poll>,
}

/// The plan, when the direct loop can run the scenario; `None`: it runs on tasks.
pub fn plan(ctx: &Ctx) -> Option<Plan> {
    if std::env::var_os("STAMPEDE_DIRECT_LOOP").is_some_and(|v| v == "off") {
        return None;
    }
    let load = &ctx.scenario.load;
    let ep = &ctx.env.endpoint;
    if load.model != Model::Closed || !load.think_time.max.is_zero() || ep.served_by.is_some() {
        return None;
    }
    let requests = ctx
        .scenario
        .actions
        .iter()
        .map(|a| a.plan.fixed(&ctx.env))
        .collect::<Option<_>>()?;
    let polls = (0..ctx.load.threads())
        .map(|_| mio::Poll::new())
        .collect::<Result<_, _>>();
    match polls {
        Ok(polls) => Some(Plan { requests, polls }),
        Err(e) => {
            tracing::warn!("the direct loop's epoll: {e}; the users run on tasks");
            None
        }
    }
}

/// Ends the loops however the controller ends (its task dropped too): a loop never yields, so only
/// these flags stop it.
struct EndLoops<'a>(&'a Shared);

impl Drop for EndLoops<'_> {
    fn drop(&mut self) {
        self.0.over.store(true, Ordering::Relaxed);
        self.0.cut.store(true, Ordering::Relaxed);
    }
}

/// Run the closed model on the direct loop until the load's stages end or the soft stop.
pub async fn run(ctx: Arc<Ctx>, start: Instant, plan: Plan) {
    let Plan { requests, polls } = plan;
    let shared = Arc::new(Shared {
        ctx: Arc::clone(&ctx),
        requests,
        target: AtomicUsize::new(0),
        over: AtomicBool::new(false),
        cut: AtomicBool::new(false),
    });
    let threads = polls.len();
    let _end = EndLoops(&shared);
    let loops: Vec<_> = polls
        .into_iter()
        .enumerate()
        .map(|(thread, poll)| {
            let shared = Arc::clone(&shared);
            ctx.load.spawn(
                thread,
                async move { user::Loop::new(&shared, poll, thread, threads).run() },
            )
        })
        .collect();
    let mut stop = ctx.env.soft_stop.clone();
    loop {
        let elapsed = start.elapsed();
        if elapsed >= ctx.load_duration || *stop.borrow() || ctx.budget.spent() {
            break;
        }
        shared.target.store(closed::wanted(&ctx, elapsed), Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(CONTROL_TICK) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
    // With a budget spent, users finish their last action and leave by themselves.
    if !ctx.budget.spent() {
        shared.target.store(0, Ordering::Relaxed);
    }
    shared.over.store(true, Ordering::Relaxed);
    let mut hard = ctx.hard_stop.clone();
    for mut handle in loops {
        tokio::select! {
            _ = &mut handle => {}
            () = hard_stopped(&mut hard) => {
                shared.cut.store(true, Ordering::Relaxed);
                let _ = handle.await;
            }
        }
    }
}
