//! The database: one `Store` over PostgreSQL or SQLite. Reads and creates are the same SQL on both
//! (`$N` placeholders work on each); what differs — how a write transaction starts and how a row is
//! locked — lives behind the [`Backend`] trait, so the lock behaviour of each profile is written once.

mod backend;
mod cache;
mod error;
mod lookup;
mod read;
mod schema;
mod toggle;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

pub use error::{LockConflict, Result, StoreError};
pub use lookup::{FrontedServer, ToolRoute};
pub use read::ListShape;

use crate::config::StoreBehaviour;
use backend::{Backend, PgBackend, SqliteBackend};

/// What to list and how much of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ListQuery {
    pub include_inactive: bool,
    pub limit: Option<u32>,
    /// The last id of the previous page.
    pub cursor: Option<String>,
    /// Tools only: narrow to one gateway's tools.
    pub gateway_id: Option<String>,
}

/// One page of a listing.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Pool and lock figures for the metrics endpoint.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub max: u32,
    pub open: u32,
    pub idle: u32,
}

/// Counters the store keeps about itself, shared with the metrics endpoint.
#[derive(Debug, Default)]
pub struct DbStats {
    lock_waits_in_flight: AtomicI64,
}

impl DbStats {
    /// Statements in flight that wait for a row or database lock.
    pub fn lock_waits_in_flight(&self) -> i64 {
        self.lock_waits_in_flight.load(Ordering::Relaxed)
    }

    /// Count a lock-waiting statement for as long as the guard lives (also when its future is dropped).
    fn waiting(&self) -> LockWaitGuard<'_> {
        self.lock_waits_in_flight.fetch_add(1, Ordering::Relaxed);
        LockWaitGuard(self)
    }
}

struct LockWaitGuard<'a>(&'a DbStats);

impl Drop for LockWaitGuard<'_> {
    fn drop(&mut self) {
        self.0.lock_waits_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request-scoped database session ([`Store::request_session`]): held, never used.
pub enum RequestSession {
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    pub size: u32,
    pub acquire_timeout: Duration,
    /// What stands between the gateway and PostgreSQL.
    pub pooler: crate::config::Pooler,
}

enum Pool {
    Pg(PgBackend),
    Sqlite(SqliteBackend),
}

/// Run `$body` with `$b` bound to the concrete backend; the body is compiled once per backend.
macro_rules! on_backend {
    ($pool:expr, $b:ident => $body:expr) => {
        match $pool {
            $crate::store::Pool::Pg($b) => $body,
            $crate::store::Pool::Sqlite($b) => $body,
        }
    };
}
use on_backend;

/// The same SQL for each kind's table; expands to a `&'static str`, so no query text is built per request.
macro_rules! per_kind {
    ($kind:expr, $before:literal, $after:literal) => {
        match $kind {
            $crate::model::Kind::Gateway => concat!($before, "gateways", $after),
            $crate::model::Kind::Tool => concat!($before, "tools", $after),
            $crate::model::Kind::Server => concat!($before, "servers", $after),
            $crate::model::Kind::Prompt => concat!($before, "prompts", $after),
            $crate::model::Kind::Resource => concat!($before, "resources", $after),
        }
    };
}
use per_kind;

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    behaviour: StoreBehaviour,
    stats: Arc<DbStats>,
    pool_size: u32,
    /// The MCP client a gateway's activation federates its upstream with, inside the write's
    /// transaction (the legacy profile holds its locks across it).
    upstream: crate::upstream::Client,
    /// Writes ended so far: what every cached read is checked against.
    writes: cache::Writes,
    /// `tools/list` answers, the whole list and per server.
    tools: cache::ReadCache<Option<String>, Arc<serde_json::value::RawValue>>,
    /// `tools/call`'s tool (and gateway) by name.
    routes: cache::ReadCache<String, Option<Arc<ToolRoute>>>,
    /// What each virtual server fronts (`lookup::FrontedServer`).
    fronts: cache::ReadCache<String, Option<Arc<FrontedServer>>>,
    /// REST list and get answers, as the body sent.
    reads: cache::ReadCache<read::ReadKey, bytes::Bytes>,
}

impl Store {
    /// Connect to `url` (`postgres://…` or `sqlite://…`), creating a SQLite file if needed, and run
    /// the embedded migrations.
    pub async fn open(
        url: &str,
        pool: PoolConfig,
        behaviour: StoreBehaviour,
        upstream: crate::upstream::Client,
    ) -> anyhow::Result<Store> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Pg(PgBackend::connect(url, pool, &behaviour).await?)
        } else if url.starts_with("sqlite:") {
            Pool::Sqlite(SqliteBackend::connect(url, pool, &behaviour).await?)
        } else {
            anyhow::bail!("DATABASE_URL must start with postgres:// or sqlite:// (got {url:?})");
        };
        on_backend!(&backend, b => schema::migrate(b.pool()).await?);
        Ok(Store {
            inner: Arc::new(Inner {
                pool: backend,
                behaviour,
                stats: Arc::default(),
                pool_size: pool.size,
                upstream,
                writes: cache::Writes::default(),
                tools: cache::ReadCache::new(behaviour.read_cache),
                routes: cache::ReadCache::new(behaviour.read_cache),
                fronts: cache::ReadCache::new(behaviour.read_cache),
                reads: cache::ReadCache::new(behaviour.read_cache),
            }),
        })
    }

    /// Held for the length of every write: invalidates cached lists when it ends.
    fn writing(&self) -> cache::WriteGuard<'_> {
        self.inner.writes.writing()
    }

    /// A tool call's database session: in the `request` scope one connection held in an open
    /// transaction until the returned guard is dropped (nothing is written in it: dropping it rolls back);
    /// `None` in the `statement` scope.
    pub async fn request_session(&self) -> Result<Option<RequestSession>> {
        if self.inner.behaviour.session_scope == crate::config::SessionScope::Statement {
            return Ok(None);
        }
        let err = |e| error::classify(e, crate::model::Kind::Tool, "");
        Ok(Some(match &self.inner.pool {
            Pool::Pg(b) => RequestSession::Pg(b.pool().begin().await.map_err(err)?),
            Pool::Sqlite(b) => RequestSession::Sqlite(b.pool().begin().await.map_err(err)?),
        }))
    }

    pub fn behaviour(&self) -> &StoreBehaviour {
        &self.inner.behaviour
    }

    pub fn stats(&self) -> &Arc<DbStats> {
        &self.inner.stats
    }

    pub fn backend_name(&self) -> &'static str {
        match self.inner.pool {
            Pool::Pg(_) => "postgres",
            Pool::Sqlite(_) => "sqlite",
        }
    }

    /// `SELECT 1`, bounded in time so a health check never hangs on a dead database.
    pub async fn ping(&self) -> Result<()> {
        let probe =
            async { on_backend!(&self.inner.pool, b => sqlx::query("SELECT 1").execute(b.pool()).await.map(|_| ())) };
        match tokio::time::timeout(Duration::from_secs(2), probe).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Unavailable(e)),
            Err(_) => Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
        }
    }

    pub fn pool_stats(&self) -> PoolStats {
        let (open, idle) = match &self.inner.pool {
            Pool::Pg(b) => (b.pool().size(), b.pool().num_idle() as u32),
            Pool::Sqlite(b) => b.usage(),
        };
        PoolStats {
            max: self.inner.pool_size,
            open,
            idle,
        }
    }

    /// Close the pool, waiting for connections in use to come back.
    pub async fn close(&self) {
        on_backend!(&self.inner.pool, b => b.close().await)
    }
}
