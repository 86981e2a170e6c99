//! The one kit every stampede crate's integration tests share: our binaries and the real parts they
//! meet (PostgreSQL, PgBouncer, nginx, ContextForge, Prometheus) started and stopped, a database of its
//! own per test, tokens the gateway accepts, and waiting for a condition. Nothing here imitates a part:
//! each function starts the real one or says why it cannot.

pub mod bin;
pub mod conformance;
pub mod gateway;
pub mod net;
pub mod parts;
pub mod pg;
pub mod proc;
pub mod token;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use bin::stampede;
pub use gateway::{Gateway, SseStream, drop_abruptly};
pub use net::{free_port, read_head, read_request, tcp_server};
pub use parts::{
    Certs, ContextForge, Everything, McpSdk, PgBouncer, StaticNginx, TlsProxy, nginx_binary, prometheus_binary,
};
pub use pg::{Db, TestDb, no_pg, pg_admin_url};
pub use proc::{Proc, first_line_url, spawn_gateway, spawn_gateway_with, spawn_upstream};
pub use token::{SECRET, token_signed, token_with};

/// The workspace's root (where `scripts/`, `scenarios/` and `docs/` are).
pub fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Poll `check` until it returns Some, or panic after `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Generate one test per backend: `both!(name)` runs `async fn name(db: Db)` on SQLite and PostgreSQL.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Db::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::no_pg() {
                        return;
                    }
                    super::$name($crate::Db::Postgres).await
                }
            }
        )*
    };
}
