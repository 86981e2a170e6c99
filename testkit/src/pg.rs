//! A test's PostgreSQL database (a fresh one on the server in `STAMPEDE_TEST_PG`, which `make test`
//! starts) or SQLite file, removed when the test ends.

use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// True when there is no test PostgreSQL (a plain `cargo test`): a PostgreSQL case then skips with a
/// line instead of failing. `make test` always provides one.
pub fn no_pg() -> bool {
    let missing = std::env::var_os("STAMPEDE_TEST_PG").is_none();
    if missing {
        eprintln!("skipped: STAMPEDE_TEST_PG is not set (`make test` starts a throwaway PostgreSQL)");
    }
    missing
}

/// The admin URL of the test PostgreSQL server.
pub fn pg_admin_url() -> String {
    std::env::var("STAMPEDE_TEST_PG").expect(
        "STAMPEDE_TEST_PG is not set: run `make test`, which starts a throwaway PostgreSQL, \
         or point it at a server you own (postgres://user@host:port/postgres)",
    )
}

/// A database of its own for one test; dropped (with its connections) when the test ends.
pub struct TestDb {
    pub url: String,
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh PostgreSQL database.
    pub async fn postgres() -> TestDb {
        TestDb::new(Db::Postgres).await
    }

    pub async fn new(db: Db) -> TestDb {
        match db {
            Db::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                TestDb {
                    url: format!("sqlite://{}", dir.path().join("stampede.db").display()),
                    pg: None,
                    _dir: Some(dir),
                }
            }
            Db::Postgres => {
                let admin = pg_admin_url();
                let name = format!("stampede_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to STAMPEDE_TEST_PG");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let mut url = reqwest::Url::parse(&admin).expect("STAMPEDE_TEST_PG is a URL");
                url.set_path(&format!("/{name}"));
                TestDb {
                    url: url.to_string(),
                    pg: Some((admin, name)),
                    _dir: None,
                }
            }
        }
    }

    pub fn pg_name(&self) -> &str {
        &self.pg.as_ref().expect("a PostgreSQL test database").1
    }

    pub fn sqlite_path(&self) -> &str {
        self.url.strip_prefix("sqlite://").expect("a SQLite test database")
    }

    pub async fn pg_conn(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url)
            .await
            .expect("connect to test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Drop runs outside any runtime guarantee: use a thread of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}
