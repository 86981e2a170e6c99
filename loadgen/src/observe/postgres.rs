//! The PostgreSQL observer: on its own connection (never counted in what it reports), four times a
//! second, the backends of the target's database waiting on a lock and the longest wait, the sessions
//! idle in a transaction and the oldest, and — when anything is blocked — who blocks whom
//! (`pg_blocking_pids`) with both queries, truncated. The timeline takes the worst of each window.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::{Connection as _, Row as _};
use tokio::task::JoinHandle;

use super::{Observer, Registration, Windows, max, mean};
use crate::data::{ChainLink, Observed, ObservedSummary, Sources};

/// The worst of what was seen since the last window was taken.
#[derive(Debug, Clone, Default)]
pub struct PgWindow {
    pub samples: u32,
    pub blocked: u32,
    pub longest_wait_s: f64,
    pub idle_in_tx: u32,
    pub idle_in_tx_longest_s: f64,
    /// The longest chain seen, blocked first, then what blocks it, and so on.
    pub chain: Vec<ChainLink>,
}

const ACTIVITY: &str = "SELECT \
      count(*) FILTER (WHERE wait_event_type = 'Lock')::int4, \
      coalesce(extract(epoch FROM max(now() - query_start) FILTER (WHERE wait_event_type = 'Lock')), 0)::float8, \
      count(*) FILTER (WHERE state LIKE 'idle in transaction%')::int4, \
      coalesce(extract(epoch FROM max(now() - state_change) FILTER (WHERE state LIKE 'idle in transaction%')), 0)::float8 \
    FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()";

const EDGES: &str = "SELECT w.pid, w.state, w.wait_event_type, \
      coalesce(extract(epoch FROM now() - w.query_start), 0)::float8, left(w.query, 200), \
      b.pid, b.state, b.wait_event_type, \
      coalesce(extract(epoch FROM now() - coalesce(b.xact_start, b.query_start)), 0)::float8, left(b.query, 200) \
    FROM pg_stat_activity w \
    CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS blocker(pid) \
    JOIN pg_stat_activity b ON b.pid = blocker.pid \
    WHERE w.datname = current_database() AND w.wait_event_type = 'Lock' AND w.pid <> pg_backend_pid()";

/// Sample until the task is aborted; `window` is where the worst values go.
pub async fn observe(url: String, window: Arc<Mutex<Option<PgWindow>>>) {
    let mut conn: Option<sqlx::PgConnection> = None;
    loop {
        if conn.is_none() {
            conn = sqlx::PgConnection::connect(&url).await.ok();
        }
        let sample = match conn.as_mut() {
            Some(c) => sample(c).await.ok(),
            None => None,
        };
        match sample {
            Some((blocked, wait, idle, idle_age, chain)) => {
                let mut w = window.lock().expect("pg window lock");
                let w = w.get_or_insert_with(PgWindow::default);
                w.samples += 1;
                w.blocked = w.blocked.max(blocked);
                w.longest_wait_s = w.longest_wait_s.max(wait);
                w.idle_in_tx = w.idle_in_tx.max(idle);
                w.idle_in_tx_longest_s = w.idle_in_tx_longest_s.max(idle_age);
                if chain.len() > w.chain.len() {
                    w.chain = chain;
                }
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

type Sampled = (u32, f64, u32, f64, Vec<ChainLink>);

async fn sample(conn: &mut sqlx::PgConnection) -> Result<Sampled, sqlx::Error> {
    let row = sqlx::query(ACTIVITY).fetch_one(&mut *conn).await?;
    let blocked: i32 = row.try_get(0)?;
    let wait: f64 = row.try_get(1)?;
    let idle: i32 = row.try_get(2)?;
    let idle_age: f64 = row.try_get(3)?;
    let mut chain = Vec::new();
    if blocked > 0 {
        let mut edges = Vec::new();
        for r in sqlx::query(EDGES).fetch_all(&mut *conn).await? {
            let link = |i: usize| -> Result<ChainLink, sqlx::Error> {
                Ok(ChainLink {
                    pid: r.try_get(i)?,
                    state: r.try_get(i + 1)?,
                    wait_event_type: r.try_get(i + 2)?,
                    age_s: r.try_get(i + 3)?,
                    query: r.try_get::<Option<String>, _>(i + 4)?.unwrap_or_default(),
                })
            };
            edges.push((link(0)?, link(5)?));
        }
        chain = longest_chain(&edges);
    }
    Ok((blocked.max(0) as u32, wait, idle.max(0) as u32, idle_age, chain))
}

/// From (blocked, blocker) edges, the longest path blocked → blocker → blocker's blocker …
pub fn longest_chain(edges: &[(ChainLink, ChainLink)]) -> Vec<ChainLink> {
    let mut best: Vec<ChainLink> = Vec::new();
    for (start, _) in edges {
        let mut path = vec![start.clone()];
        let mut current = start.pid;
        while let Some((_, blocker)) = edges.iter().find(|(w, _)| w.pid == current) {
            if path.iter().any(|l| l.pid == blocker.pid) || path.len() > 32 {
                break; // a deadlock cycle, or absurdly long
            }
            path.push(blocker.clone());
            current = blocker.pid;
        }
        if path.len() > best.len() {
            best = path;
        }
    }
    best
}

pub const OBSERVER: Registration = Registration {
    start: |config, _| {
        let url = config.postgres.clone()?;
        let window = Arc::new(Mutex::new(None));
        let task = tokio::spawn(observe(url.clone(), Arc::clone(&window)));
        Some(Box::new(Postgres { url, window, task }))
    },
    summarize,
};

struct Postgres {
    url: String,
    window: Arc<Mutex<Option<PgWindow>>>,
    task: JoinHandle<()>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Observer for Postgres {
    fn window(&mut self, o: &mut Observed) {
        let w = self
            .window
            .lock()
            .expect("pg window lock")
            .take()
            .filter(|w| w.samples > 0);
        if let Some(w) = w {
            o.blocked_queries = Some(w.blocked);
            o.longest_lock_wait_s = Some(w.longest_wait_s);
            o.idle_in_tx = Some(w.idle_in_tx);
            o.idle_in_tx_longest_s = Some(w.idle_in_tx_longest_s);
            o.blocking_chain = w.chain;
        }
    }

    fn source(&self, sources: &mut Sources) {
        sources.postgres = Some(redact(&self.url));
    }
}

/// The worst of each figure over the run, and the distinct blocking chains, longest first.
fn summarize(w: &Windows<'_>, s: &mut ObservedSummary) {
    let blocked = w.each(|o| o.blocked_queries.map(f64::from));
    s.blocked_queries_max = max(&blocked).map(|m| m as u32);
    s.blocked_queries_mean = mean(&blocked);
    s.longest_lock_wait_s = max(&w.each(|o| o.longest_lock_wait_s));
    s.idle_in_tx_max = max(&w.each(|o| o.idle_in_tx.map(f64::from))).map(|m| m as u32);
    s.idle_in_tx_longest_s = max(&w.each(|o| o.idle_in_tx_longest_s));
    let mut chains: Vec<Vec<ChainLink>> = Vec::new();
    for (_, _, o) in w.windows {
        if o.blocking_chain.len() > 1 {
            let key: Vec<&str> = o.blocking_chain.iter().map(|l| l.query.as_str()).collect();
            if !chains
                .iter()
                .any(|c| c.iter().map(|l| l.query.as_str()).eq(key.iter().copied()))
            {
                chains.push(o.blocking_chain.clone());
            }
        }
    }
    chains.sort_by_key(|c| std::cmp::Reverse(c.len()));
    chains.truncate(10);
    s.blocking_chains = chains;
}

/// The URL with its password starred.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(c) => format!("{}:***{}", &url[..s + 3 + c], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(pid: i32) -> ChainLink {
        ChainLink {
            pid,
            state: None,
            wait_event_type: None,
            age_s: 0.0,
            query: format!("q{pid}"),
        }
    }

    #[test]
    fn follows_blockers_to_the_head_of_the_chain() {
        let edges = vec![(link(3), link(2)), (link(2), link(1)), (link(5), link(1))];
        let pids: Vec<i32> = longest_chain(&edges).iter().map(|l| l.pid).collect();
        assert_eq!(pids, [3, 2, 1]);
        let cycle = vec![(link(1), link(2)), (link(2), link(1))];
        assert_eq!(longest_chain(&cycle).len(), 2);
        assert!(longest_chain(&[]).is_empty());
    }
}
