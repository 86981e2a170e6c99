//! The PgBouncer observer: its admin console (`SHOW POOLS`, the virtual database `pgbouncer`) four
//! times a second — clients waiting for a server connection, summed over the pools, and the longest
//! of their waits. This is what an operator looks at when a pool runs dry: blocked queries in
//! PostgreSQL are the backends that hold connections; PgBouncer's waiting clients are the requests
//! that cannot even get one. The timeline takes the worst of each window.
//!
//! The console speaks only the simple query protocol and sends every value as text, so the query
//! goes without arguments (sqlx then uses that protocol) and the values are read as text. sqlx sends `extra_float_digits` at startup:
//! PgBouncer must list it in `ignore_startup_parameters` (as production configs for JDBC clients
//! do; `scripts/pgbouncer.sh` writes it).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::{Column as _, Connection as _, Row as _, ValueRef as _};
use tokio::task::JoinHandle;

use super::{Observer, Registration, Windows, max, mean};
use crate::data::{Observed, ObservedSummary, Sources};

/// The worst of what was seen since the last window was taken.
#[derive(Debug, Clone, Copy, Default)]
struct PoolWindow {
    samples: u32,
    waiting: u32,
    longest_wait_s: f64,
}

pub const OBSERVER: Registration = Registration {
    start: |config, _| {
        let url = config.pgbouncer.clone()?;
        let window = Arc::new(Mutex::new(None));
        let task = tokio::spawn(observe(url.clone(), Arc::clone(&window)));
        Some(Box::new(PgBouncer { url, window, task }))
    },
    summarize,
};

struct PgBouncer {
    url: String,
    window: Arc<Mutex<Option<PoolWindow>>>,
    task: JoinHandle<()>,
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Observer for PgBouncer {
    fn window(&mut self, o: &mut Observed) {
        let w = self
            .window
            .lock()
            .expect("pgbouncer window lock")
            .take()
            .filter(|w| w.samples > 0);
        if let Some(w) = w {
            o.pgbouncer_waiting = Some(w.waiting);
            o.pgbouncer_longest_wait_s = Some(w.longest_wait_s);
        }
    }

    fn source(&self, sources: &mut Sources) {
        sources.pgbouncer = Some(super::postgres::redact(&self.url));
    }
}

/// Sample until the task is aborted.
async fn observe(url: String, window: Arc<Mutex<Option<PoolWindow>>>) {
    let mut conn: Option<sqlx::PgConnection> = None;
    loop {
        if conn.is_none() {
            conn = sqlx::PgConnection::connect(&url).await.ok();
        }
        let sample = match conn.as_mut() {
            Some(c) => show_pools(c).await.ok(),
            None => None,
        };
        match sample {
            Some((waiting, wait_s)) => {
                let mut w = window.lock().expect("pgbouncer window lock");
                let w = w.get_or_insert_with(PoolWindow::default);
                w.samples += 1;
                w.waiting = w.waiting.max(waiting);
                w.longest_wait_s = w.longest_wait_s.max(wait_s);
            }
            None => {
                // Unreachable: that window stays unmeasured; try to connect again.
                conn = None;
                tokio::time::sleep(Duration::from_millis(750)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `SHOW POOLS`: clients waiting, summed over the pools, and the longest wait (s).
async fn show_pools(conn: &mut sqlx::PgConnection) -> Result<(u32, f64), sqlx::Error> {
    // A query without arguments goes by the simple protocol, the only one the console speaks.
    let rows = sqlx::Executor::fetch_all(&mut *conn, "SHOW POOLS").await?;
    let mut waiting = 0u32;
    let mut longest = 0.0f64;
    for row in &rows {
        let mut maxwait = 0.0;
        let mut maxwait_us = 0.0;
        for (i, column) in row.columns().iter().enumerate() {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                continue;
            }
            let text = raw.as_str().map_err(sqlx::Error::Decode)?;
            let number = || text.trim().parse::<f64>().unwrap_or(0.0);
            match column.name() {
                "cl_waiting" => waiting += number() as u32,
                "maxwait" => maxwait = number(),
                "maxwait_us" => maxwait_us = number(),
                _ => {}
            }
        }
        longest = longest.max(maxwait + maxwait_us / 1e6);
    }
    Ok((waiting, longest))
}

/// The most clients waiting in any window and their mean, and the longest wait.
fn summarize(w: &Windows<'_>, s: &mut ObservedSummary) {
    let waiting = w.each(|o| o.pgbouncer_waiting.map(f64::from));
    s.pgbouncer_waiting_max = max(&waiting).map(|m| m as u32);
    s.pgbouncer_waiting_mean = mean(&waiting);
    s.pgbouncer_longest_wait_s = max(&w.each(|o| o.pgbouncer_longest_wait_s));
}
