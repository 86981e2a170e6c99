//! Test harness: the real `stampede-gateway` binary on a real socket, over SQLite in a temporary
//! directory or over a fresh database on the PostgreSQL server named by `STAMPEDE_TEST_PG`
//! (`make test` starts one). Nothing is mocked.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const SECRET: &str = "test-secret";

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

/// A running gateway process.
pub struct Gateway {
    child: Child,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Gateway {
    /// Start the gateway on `db` with extra environment (profile toggles and the like).
    pub async fn start(db: &TestDb, env: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stampede-gateway"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", "127.0.0.1:0")
            .env("DATABASE_URL", &db.url)
            .env("JWT_SECRET_KEY", SECRET)
            .env("GATEWAY_ACTIVATION_IO_MS", "0")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("spawn stampede-gateway");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("gateway did not start within 30 s")
            .expect("read gateway stdout")
            .expect("gateway exited before listening");
        let base = line
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_owned();
        Gateway {
            child,
            base,
            token: token_with(json!({})),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_max_idle_per_host(64)
                .build()
                .expect("client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the test token; answers (status, JSON body).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("non-JSON answer {status}: {text}"));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn toggle(&self, kind: &str, id: &str, activate: bool) -> (StatusCode, Value) {
        self.call(Method::POST, &format!("/{kind}/{id}/state?activate={activate}"), None)
            .await
    }

    /// Create an entity and return its id (asserting success).
    pub async fn create(&self, kind: &str, body: Value) -> String {
        let (status, v) = self.post(&format!("/{kind}"), body).await;
        assert!(status.is_success(), "create {kind}: {status} {v}");
        v["id"].as_str().expect("id").to_owned()
    }

    pub async fn gateway(&self, name: &str) -> String {
        self.create("gateways", json!({"name": name, "url": "http://127.0.0.1:9/mcp"}))
            .await
    }

    pub async fn tool(&self, name: &str, gateway_id: Option<&str>) -> String {
        self.create("tools", json!({"tool": {"name": name, "gateway_id": gateway_id}}))
            .await
    }

    /// The value of one Prometheus series (exact name with labels), if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self
            .http
            .get(self.url("/metrics/prometheus"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("scrape body");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Stop the gateway with SIGTERM and wait for it to exit; returns whether it exited cleanly.
    pub async fn stop(mut self) -> bool {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => false,
        }
    }

    /// Kill the gateway with SIGKILL (no drain, no rollback of its own) and wait for it to be gone.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("gateway running")
    }

    /// CPU seconds (user + system, all threads) the gateway process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = procfs::process::Process::new(self.pid() as i32)
            .and_then(|p| p.stat())
            .expect("gateway /proc stat");
        (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64
    }

    /// The gateway's CPU use over `window`, as a fraction of one core.
    pub async fn cpu_over(&self, window: Duration) -> f64 {
        let before = self.cpu_seconds();
        let start = Instant::now();
        tokio::time::sleep(window).await;
        (self.cpu_seconds() - before) / start.elapsed().as_secs_f64()
    }

    /// A JSON-RPC call on `/rpc`: (HTTP status, answer).
    pub async fn rpc(&self, method: &str, params: Value) -> (StatusCode, Value) {
        self.post(
            "/rpc",
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
        )
        .await
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// An HS256 token signed with the test secret; `overrides` replaces or removes (null) claims.
pub fn token_with(overrides: Value) -> String {
    token_signed(overrides, SECRET, jsonwebtoken::Algorithm::HS256)
}

pub fn token_signed(overrides: Value, secret: &str, alg: jsonwebtoken::Algorithm) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let mut claims = json!({
        "sub": "admin@example.com",
        "iat": now,
        "exp": now + 3600,
        "aud": "mcpgateway-api",
        "iss": "mcpgateway",
    });
    for (k, v) in overrides.as_object().expect("object").iter() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
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
                    super::$name($crate::common::Db::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::common::no_pg() {
                        return;
                    }
                    super::$name($crate::common::Db::Postgres).await
                }
            }
        )*
    };
}

/// An SSE stream read frame by frame (`event`, `data`), over reqwest.
pub struct SseStream {
    pub response: reqwest::Response,
    buf: Vec<u8>,
}

impl SseStream {
    pub async fn open(gw: &Gateway, path: &str) -> SseStream {
        let response = gw
            .http
            .get(gw.url(path))
            .bearer_auth(&gw.token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("open SSE");
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        SseStream {
            response,
            buf: Vec::new(),
        }
    }

    /// The next frame, or None when the stream ends; panics after `within`.
    pub async fn next_within(&mut self, within: Duration) -> Option<(String, String)> {
        tokio::time::timeout(within, self.next())
            .await
            .expect("an SSE frame in time")
    }

    pub async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let raw: Vec<u8> = self.buf.drain(..end + 4).collect();
                let text = String::from_utf8(raw).expect("UTF-8 frame");
                let mut lines = text.trim_end_matches("\r\n").split("\r\n");
                let event = lines.next()?.strip_prefix("event: ").expect("event line").to_owned();
                let data = lines.next()?.strip_prefix("data: ").expect("data line").to_owned();
                assert!(lines.next().is_none(), "one event and one data line: {text:?}");
                return Some((event, data));
            }
            match self.response.chunk().await.ok()? {
                Some(chunk) => self.buf.extend_from_slice(&chunk),
                None => return None,
            }
        }
    }

    /// Read the endpoint frame and the first keepalive; answer the endpoint URL.
    pub async fn handshake(&mut self) -> String {
        let (event, endpoint) = self.next_within(Duration::from_secs(10)).await.expect("endpoint frame");
        assert_eq!(event, "endpoint");
        let (event, data) = self
            .next_within(Duration::from_secs(10))
            .await
            .expect("keepalive frame");
        assert_eq!((event.as_str(), data.as_str()), ("keepalive", "{}"));
        endpoint
    }

    /// Skip keepalives until a message frame; answer its JSON.
    pub async fn next_message(&mut self) -> Value {
        loop {
            let (event, data) = self.next_within(Duration::from_secs(10)).await.expect("a message");
            if event == "message" {
                return serde_json::from_str(&data).expect("JSON message");
            }
            assert_eq!(event, "keepalive");
        }
    }
}

/// Drop every stream abruptly: half closed (FIN), half reset (RST, SO_LINGER 0).
pub fn drop_abruptly(streams: Vec<tokio::net::TcpStream>) {
    for (i, stream) in streams.into_iter().enumerate() {
        if i % 2 == 0 {
            stream.set_zero_linger().unwrap();
        }
        drop(stream);
    }
}
