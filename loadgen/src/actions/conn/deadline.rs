//! A request's timeout on one connection's own timer, re-armed lazily. `tokio::time::timeout` per
//! request puts a new entry into the runtime's timer wheel and takes it out again each time; perf found
//! that to be the largest user-space cost of the request loop at 4000 connections. Here the user keeps
//! one timer: a request whose timeout is later than the timer's deadline leaves the timer where it is,
//! and only when it fires early (some earlier request's deadline) is it moved to the current one. A user
//! making requests of a few milliseconds against a 30 s timeout touches the wheel once every 30 s.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

#[derive(Default)]
pub struct Deadline {
    /// Allocated once, with the connection's first request.
    timer: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    /// Run `work` for at most `timeout`; `None` when the time ran out first.
    pub async fn within<F: Future>(&mut self, timeout: Duration, work: F) -> Option<F::Output> {
        let due = Instant::now() + timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if timer.deadline() > due {
            // A shorter timeout than before: the timer must not fire late.
            timer.as_mut().reset(due);
        }
        let mut work = pin!(work);
        poll_fn(|cx| {
            if let Poll::Ready(out) = work.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            while timer.as_mut().poll(cx).is_ready() {
                if timer.deadline() >= due {
                    return Poll::Ready(None);
                }
                // An earlier request's deadline: move on to this one's (polled again to register).
                timer.as_mut().reset(due);
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_late_answer_times_out_and_an_early_timer_is_moved_not_obeyed() {
        let ms = Duration::from_millis;
        let mut d = Deadline::default();
        // Fast work under a 300 ms timeout leaves the timer at 300 ms from now.
        assert_eq!(d.within(ms(300), async { 7 }).await, Some(7));
        tokio::time::sleep(ms(200)).await;
        // This request may run until 200 + 300 ms: the timer fires early, at 300, and must not end it.
        let slow = d.within(ms(300), tokio::time::sleep(ms(250))).await;
        assert_eq!(slow, Some(()), "ended by an earlier request's deadline");
        // Work that never ends is cut at its own timeout, not before and not much after.
        let started = Instant::now();
        assert_eq!(d.within(ms(150), std::future::pending::<()>()).await, None);
        let took = started.elapsed();
        assert!(took >= ms(150) && took < ms(1000), "{took:?}");
    }
}
