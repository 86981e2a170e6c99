//! Embedded migrations, the same SQL on PostgreSQL and SQLite, applied in order at start.

use sqlx::{Database, Executor, IntoArguments, Pool};

/// (version, SQL). Append only: a deployed migration never changes.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_entities.sql")),
    (2, include_str!("../../migrations/0002_federation.sql")),
];

pub(crate) async fn migrate<DB>(pool: &Pool<DB>) -> anyhow::Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    i64: sqlx::Type<DB> + for<'q> sqlx::Encode<'q, DB> + for<'r> sqlx::Decode<'r, DB>,
    usize: sqlx::ColumnIndex<DB::Row>,
{
    let mut conn = pool.acquire().await?;
    conn.execute("CREATE TABLE IF NOT EXISTS stampede_migrations (version BIGINT PRIMARY KEY)")
        .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM stampede_migrations")
        .fetch_all(&mut *conn)
        .await?;
    for &(version, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        tx.execute(sqlx::raw_sql(sql)).await?;
        sqlx::query("INSERT INTO stampede_migrations (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version, "applied migration");
    }
    Ok(())
}
