//! Known slowdowns, for the gate's sensitivity test only (`TEST_ONLY_CPU_COST_US`,
//! `TEST_ONLY_DELAY_US`): a CI gate is only trustworthy if it is shown to fail on a slowdown of a size
//! it claims to catch. Neither is a feature; with both at 0 the layer is not installed at all.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;

#[derive(Debug, Clone, Copy)]
struct Slowdown {
    cpu: Duration,
    delay: Duration,
}

/// Wrap `app` so every request first burns `cpu` on its worker thread and then waits `delay`.
pub fn layer(app: axum::Router, cpu: Duration, delay: Duration) -> axum::Router {
    if cpu.is_zero() && delay.is_zero() {
        return app;
    }
    let s = Slowdown { cpu, delay };
    app.layer(middleware::from_fn(move |req: Request, next: Next| {
        slowed(s, req, next)
    }))
}

async fn slowed(s: Slowdown, req: Request, next: Next) -> Response {
    if !s.cpu.is_zero() {
        burn(s.cpu);
    }
    if !s.delay.is_zero() {
        // Not tokio's timer: it rounds up to the next millisecond, which would make a 1.4 ms delay 2 ms
        // and overstate what the gate was shown to catch. A blocking-pool thread sleeps to the µs.
        let delay = s.delay;
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(delay)).await;
    }
    next.run(req).await
}

/// Busy work on the worker thread, as a slower request path would do: `cost` of this thread's own CPU
/// time (a thread preempted mid-way keeps burning until it has had its share, so the cost is exact).
fn burn(cost: Duration) {
    let start = thread_cpu();
    let mut x = 0u64;
    while thread_cpu().saturating_sub(start) < cost {
        for _ in 0..64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_THREAD_CPUTIME_ID is always valid.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
