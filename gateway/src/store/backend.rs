//! The two backends: how a write transaction starts and how one row is locked before it changes.
//!
//! PostgreSQL locks rows: `FOR UPDATE NOWAIT` fails at once with SQLSTATE 55P03 on a locked row,
//! `FOR UPDATE` waits. Each write transaction sets its own `lock_timeout` and `statement_timeout`
//! (`set_config(…, true)` is `SET LOCAL`, and takes parameters).
//!
//! SQLite locks the database: every write transaction is `BEGIN IMMEDIATE`, taking the write lock up
//! front. "No wait" is a second pool whose connections have no busy timeout, so `BEGIN IMMEDIATE`
//! fails at once with SQLITE_BUSY when another writer holds the lock; "wait" is the main pool, whose
//! busy timeout is the lock timeout.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Database, Executor as _, Transaction};

use super::error::classify;
use super::{DbStats, PoolConfig, StoreError, per_kind};
use crate::config::{LockWait, Pooler, StoreBehaviour};
use crate::model::Kind;

pub(crate) trait Backend {
    type DB: Database;

    fn pool(&self) -> &sqlx::Pool<Self::DB>;

    /// Start a write transaction that treats locks as `mode` says.
    async fn begin_write(&self, mode: LockWait, stats: &DbStats)
    -> Result<Transaction<'static, Self::DB>, sqlx::Error>;

    /// `SELECT id` of one row of `kind`, locking it as `mode` says (`$1` = id).
    fn lock_row_sql(&self, kind: Kind, mode: LockWait) -> &'static str;

    /// Whether [`Self::lock_row_sql`] in `mode` is a statement that waits for a lock.
    fn row_lock_waits(&self, mode: LockWait) -> bool;

    /// Lock the row of `kind` called `id` inside `tx`, as `mode` says (a waiting lock counts in `stats`
    /// while it waits): what every write does before it changes a row. No such row: `NotFound`.
    async fn lock_row(
        &self,
        tx: &mut Transaction<'static, Self::DB>,
        kind: Kind,
        mode: LockWait,
        id: &str,
        stats: &DbStats,
    ) -> Result<(), StoreError>
    where
        for<'c> &'c mut <Self::DB as Database>::Connection: sqlx::Executor<'c, Database = Self::DB>,
        for<'q> <Self::DB as Database>::Arguments<'q>: sqlx::IntoArguments<'q, Self::DB>,
        for<'q> &'q str: sqlx::Encode<'q, Self::DB> + sqlx::Type<Self::DB>,
        (String,): for<'r> sqlx::FromRow<'r, <Self::DB as Database>::Row>,
    {
        let _waiting = self.row_lock_waits(mode).then(|| stats.waiting());
        let found: Option<String> = sqlx::query_scalar(self.lock_row_sql(kind, mode))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| classify(e, kind, id))?;
        match found {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound {
                kind,
                id: id.to_owned(),
            }),
        }
    }

    /// Whether the database locks rows (PostgreSQL) rather than the whole database (SQLite).
    fn locks_rows(&self) -> bool;

    async fn close(&self);
}

pub(crate) struct PgBackend {
    pool: PgPool,
    lock_timeout: String,
    statement_timeout: String,
}

impl PgBackend {
    pub async fn connect(url: &str, cfg: PoolConfig, b: &StoreBehaviour) -> anyhow::Result<Self> {
        let mut options = PgConnectOptions::from_str(url)?;
        let mut pool = PgPoolOptions::new()
            .max_connections(cfg.size)
            .acquire_timeout(cfg.acquire_timeout);
        if cfg.pooler == Pooler::Transaction {
            // Behind a transaction pooler a server connection is ours only inside a transaction, and
            // sqlx prepares each statement in one round trip and runs it in the next: so every checkout
            // is one transaction (as an ORM session is), which also starts with no prepared statement
            // left by whoever had the server before; and statements are not cached across checkouts.
            // `BEGIN` inside a write transaction's own `BEGIN` is a harmless warning; its `COMMIT`
            // ends both.
            options = options.statement_cache_capacity(0);
            pool = pool
                .after_connect(|conn, _| Box::pin(async move { conn.execute(CHECKOUT).await.map(drop) }))
                .before_acquire(|conn, _| Box::pin(async move { conn.execute(CHECKOUT).await.map(|_| true) }))
                .after_release(|conn, _| Box::pin(async move { conn.execute("COMMIT").await.map(|_| true) }));
        }
        let pool = pool.connect_with(options).await?;
        Ok(PgBackend {
            pool,
            lock_timeout: pg_setting(b.lock_timeout),
            statement_timeout: pg_setting(b.statement_timeout),
        })
    }
}

/// What a checkout runs first behind a transaction pooler (one round trip, the simple protocol).
const CHECKOUT: &str = "BEGIN; DEALLOCATE ALL";

/// A PostgreSQL duration setting; "0" turns the timeout off.
fn pg_setting(d: Option<Duration>) -> String {
    d.map_or_else(|| "0".to_owned(), |d| format!("{}ms", d.as_millis()))
}

impl Backend for PgBackend {
    type DB = Postgres;

    fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(
        &self,
        _mode: LockWait,
        _stats: &DbStats,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true)")
            .bind(&self.lock_timeout)
            .bind(&self.statement_timeout)
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    fn lock_row_sql(&self, kind: Kind, mode: LockWait) -> &'static str {
        match mode {
            LockWait::Nowait => per_kind!(kind, "SELECT id FROM ", " WHERE id = $1 FOR UPDATE NOWAIT"),
            LockWait::Wait => per_kind!(kind, "SELECT id FROM ", " WHERE id = $1 FOR UPDATE"),
        }
    }

    fn row_lock_waits(&self, mode: LockWait) -> bool {
        mode == LockWait::Wait
    }

    fn locks_rows(&self) -> bool {
        true
    }

    async fn close(&self) {
        self.pool.close().await
    }
}

pub(crate) struct SqliteBackend {
    /// Busy timeout = the lock wait; used for reads and waiting writes.
    main: SqlitePool,
    /// No busy timeout: `BEGIN IMMEDIATE` fails at once when the database is locked.
    nowait: SqlitePool,
}

impl SqliteBackend {
    pub async fn connect(url: &str, cfg: PoolConfig, b: &StoreBehaviour) -> anyhow::Result<Self> {
        let wait = b
            .lock_timeout
            .or(b.statement_timeout)
            .unwrap_or(Duration::from_secs(30));
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        if let Some(dir) = opts.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let main = SqlitePoolOptions::new()
            .max_connections(cfg.size)
            .acquire_timeout(cfg.acquire_timeout)
            .connect_with(opts.clone().busy_timeout(wait))
            .await?;
        let nowait = SqlitePoolOptions::new()
            .max_connections((cfg.size / 4).max(2))
            .acquire_timeout(cfg.acquire_timeout)
            .connect_with(opts.busy_timeout(Duration::ZERO))
            .await?;
        Ok(SqliteBackend { main, nowait })
    }

    pub fn usage(&self) -> (u32, u32) {
        (
            self.main.size() + self.nowait.size(),
            (self.main.num_idle() + self.nowait.num_idle()) as u32,
        )
    }
}

impl Backend for SqliteBackend {
    type DB = Sqlite;

    fn pool(&self) -> &SqlitePool {
        &self.main
    }

    async fn begin_write(&self, mode: LockWait, stats: &DbStats) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        match mode {
            LockWait::Nowait => self.nowait.begin_with("BEGIN IMMEDIATE").await,
            LockWait::Wait => {
                let _waiting = stats.waiting();
                self.main.begin_with("BEGIN IMMEDIATE").await
            }
        }
    }

    fn lock_row_sql(&self, kind: Kind, _mode: LockWait) -> &'static str {
        // The transaction already holds the database's write lock.
        per_kind!(kind, "SELECT id FROM ", " WHERE id = $1")
    }

    fn row_lock_waits(&self, _mode: LockWait) -> bool {
        false
    }

    fn locks_rows(&self) -> bool {
        false
    }

    async fn close(&self) {
        self.main.close().await;
        self.nowait.close().await;
    }
}
