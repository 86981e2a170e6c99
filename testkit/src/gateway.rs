//! The reference gateway as a test drives it: the real binary on a real socket over a [`TestDb`],
//! with a client holding a valid token; and its SSE streams read frame by frame.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::pg::TestDb;
use crate::token::{SECRET, token_with};

/// A running gateway process.
pub struct Gateway {
    child: Child,
    pub base: String,
    pub token: String,
    pub http: reqwest::Client,
}

impl Gateway {
    /// Start the gateway on `db` with extra environment (profile toggles and the like); registering
    /// a gateway simulates its upstream (no federation).
    pub async fn start(db: &TestDb, env: &[(&str, &str)]) -> Gateway {
        let mut env = env.to_vec();
        env.insert(0, ("GATEWAY_ACTIVATION_IO_MS", "0"));
        Gateway::federating(db, &env).await
    }

    /// [`Gateway::start`] with real federation: registering a gateway lists its upstream's tools.
    pub async fn federating(db: &TestDb, env: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(crate::bin::path("stampede-gateway"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIND", "127.0.0.1:0")
            .env("DATABASE_URL", &db.url)
            .env("JWT_SECRET_KEY", SECRET)
            .env("RUST_LOG", "warn")
            // Every test's upstreams are on this machine.
            .env("OUTBOUND_ALLOW", "loopback")
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

    /// The next frame (a comment as the event `comment`), or None when the stream ends; panics after
    /// `within`.
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
                // A comment (the keepalive) comes as the event "comment" with its text.
                if let Some(comment) = text.trim_end_matches("\r\n").strip_prefix(": ") {
                    return Some(("comment".to_owned(), comment.to_owned()));
                }
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
    pub async fn endpoint(&mut self) -> String {
        let (event, endpoint) = self.next_within(Duration::from_secs(10)).await.expect("endpoint frame");
        assert_eq!(event, "endpoint");
        let (event, data) = self
            .next_within(Duration::from_secs(10))
            .await
            .expect("keepalive comment");
        assert_eq!((event.as_str(), data.as_str()), ("comment", "keepalive"));
        endpoint
    }

    /// MCP's handshake on the session `endpoint` names: `initialize` (its answer read off the stream),
    /// then `notifications/initialized`. A gateway of the fixed profile serves nothing else before.
    pub async fn initialize(&mut self, gw: &Gateway, endpoint: &str) {
        let post = |body: Value| gw.http.post(endpoint).bearer_auth(&gw.token).json(&body).send();
        let init = serde_json::json!({"jsonrpc": "2.0", "id": "initialize", "method": "initialize",
            "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                "clientInfo": {"name": "testkit", "version": "0"}}});
        assert_eq!(post(init).await.unwrap().status(), StatusCode::ACCEPTED);
        assert_eq!(self.next_message().await["id"], "initialize");
        let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(post(initialized).await.unwrap().status(), StatusCode::ACCEPTED);
    }

    /// Skip keepalives until a message frame; answer its JSON.
    pub async fn next_message(&mut self) -> Value {
        loop {
            let (event, data) = self.next_within(Duration::from_secs(10)).await.expect("a message");
            if event == "message" {
                return serde_json::from_str(&data).expect("JSON message");
            }
            assert_eq!(event, "comment", "only keepalives besides messages");
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
