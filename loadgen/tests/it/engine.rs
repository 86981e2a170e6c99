//! The engine against in-process test servers on real sockets: the load models reach their targets,
//! expected statuses are not failures, abrupt and RST closes really close the socket, a dead target
//! ends on time with connect failures, and results validate against the committed schema.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::{get, post};
use serde_json::{Value, json};
use stampede_loadgen::data::{Completion, FailureKind};
use stampede_loadgen::engine::{self, RunOptions, RunOutput};
use stampede_loadgen::results::Results;
use stampede_loadgen::scenario;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An HTTP target: `/ok` 200, `/conflict` 409, `/slow` 200 after 200 ms, `/rpc` JSON-RPC (`fail` → error).
async fn http_target() -> SocketAddr {
    let app = axum::Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route(
            "/conflict",
            post(|| async { (axum::http::StatusCode::CONFLICT, "{\"detail\":\"busy\"}") }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                "slow"
            }),
        )
        .route(
            "/rpc",
            post(|Json(req): Json<Value>| async move {
                if req["method"] == "fail" {
                    Json(json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32602, "message": "no"}}))
                } else {
                    Json(json!({"jsonrpc": "2.0", "id": req["id"], "result": {}}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn scenario(text: &str) -> scenario::Scenario {
    scenario::parse("test.toml", text, "test", &[]).unwrap_or_else(|e| panic!("{e}"))
}

async fn run(s: scenario::Scenario) -> RunOutput {
    let (_tx, rx) = tokio::sync::watch::channel(false);
    engine::run(s, RunOptions::default(), rx).await.expect("run")
}

fn totals<'a>(out: &'a RunOutput, name: &str) -> &'a stampede_loadgen::record::Stats {
    let i = out.slots.iter().position(|s| s == name).expect("slot");
    &out.timeline.totals[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_keeps_its_users_and_expected_statuses_are_not_failures() {
    let addr = http_target().await;
    let s = scenario(&format!(
        r#"
[target]
url = "http://{addr}"
[load]
users = 20
duration = "3s"
think_time = "5ms..15ms"
[observe]
post_load = "0s"
[[actions]]
name = "ok"
kind = "http"
path = "/ok"
weight = 3
[[actions]]
name = "conflict"
kind = "http"
method = "POST"
path = "/conflict"
expected = [409]
[[actions]]
name = "rpc ok"
kind = "rpc"
method = "ping"
[[actions]]
name = "rpc fail"
kind = "rpc"
method = "fail"
expected_errors = [-32602]
"#
    ));
    let out = run(s).await;
    assert_eq!(out.completion, Completion::Complete);
    let steady_users: Vec<u64> = out
        .timeline
        .windows
        .iter()
        .filter(|w| w.t >= 2 && w.t <= 3)
        .map(|w| w.users)
        .collect();
    assert!(steady_users.iter().all(|u| *u == 20), "20 users held: {steady_users:?}");
    let ok = totals(&out, "ok");
    let conflict = totals(&out, "conflict");
    assert!(ok.count > 100 && ok.ok == ok.count, "{} ok", ok.count);
    assert_eq!(conflict.failed, 0, "409 declared expected is not a failure");
    assert_eq!(conflict.expected, conflict.count);
    assert_eq!(conflict.statuses[&409], conflict.count);
    assert_eq!(totals(&out, "rpc fail").expected, totals(&out, "rpc fail").count);
    assert_eq!(totals(&out, "rpc ok").ok, totals(&out, "rpc ok").count);
    // The mix follows the weights (3:1).
    let ratio = ok.count as f64 / conflict.count as f64;
    assert!((2.2..4.0).contains(&ratio), "weight ratio {ratio}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_statuses_and_rpc_errors_are_failures_by_kind() {
    let addr = http_target().await;
    let s = scenario(&format!(
        r#"
[target]
url = "http://{addr}"
[load]
users = 4
duration = "1s"
think_time = "10ms"
[observe]
post_load = "0s"
[[actions]]
name = "conflict"
kind = "http"
method = "POST"
path = "/conflict"
[[actions]]
name = "rpc fail"
kind = "rpc"
method = "fail"
[[actions]]
name = "missing"
kind = "http"
path = "/nowhere"
"#
    ));
    let out = run(s).await;
    let c = totals(&out, "conflict");
    assert_eq!((c.ok, c.failed), (0, c.count));
    assert_eq!(c.failures[&FailureKind::Status], c.count);
    let r = totals(&out, "rpc fail");
    assert_eq!(r.failures[&FailureKind::JsonRpc], r.count);
    assert_eq!(r.rpc_errors[&-32602], r.count);
    assert_eq!(totals(&out, "missing").statuses[&404], totals(&out, "missing").count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_reaches_its_rate_and_counts_what_it_drops() {
    let addr = http_target().await;
    let s = scenario(&format!(
        r#"
[target]
url = "http://{addr}"
[load]
model = "open"
rate = 200.0
duration = "3s"
[observe]
post_load = "0s"
[[actions]]
kind = "http"
path = "/ok"
"#
    ));
    let out = run(s).await;
    let all = out.timeline.totals_all();
    assert!((540..=660).contains(&all.count), "200/s for 3 s: {}", all.count);
    assert_eq!(out.dropped, 0);

    // A slow target and few slots: arrivals queue (latency counts from the intended start) and drop.
    let s = scenario(&format!(
        r#"
[target]
url = "http://{addr}"
[load]
model = "open"
rate = 200.0
max_in_flight = 5
duration = "2s"
[observe]
post_load = "0s"
[[actions]]
kind = "http"
path = "/slow"
"#
    ));
    let out = run(s).await;
    let all = out.timeline.totals_all();
    assert!(out.dropped > 100, "dropped {}", out.dropped);
    // 5 slots × 5 requests/s each = ~50 done in 2 s, each waiting in the queue before it ran.
    assert!(all.count <= 80, "{}", all.count);
    let p50 = all.latency.value_at_quantile(0.5) as f64 / 1000.0;
    assert!(
        p50 > 400.0,
        "queueing shows in latency from the intended start: p50 {p50} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_target_ends_on_time_with_connect_failures_and_backoff() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = scenario(&format!(
        r#"
[target]
url = "http://127.0.0.1:{port}"
[load]
users = 10
duration = "2s"
[observe]
post_load = "0s"
[[actions]]
kind = "http"
path = "/ok"
"#
    ));
    let started = Instant::now();
    let out = run(s).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "ended on time: {took:?}");
    let all = out.timeline.totals_all();
    assert!(all.connect_errors > 0);
    assert_eq!(all.count, 0, "a failed connect is no request");
    assert_eq!(all.failures.get(&FailureKind::Connect), None, "nor a failed one");
    assert_eq!(all.summary(2.0).failure_rate(), Some(1.0), "but every attempt failed");
    // Backoff from 100 ms doubling: about 4 attempts a user in 2 s, not a tight loop.
    assert!(
        all.connect_errors <= 80,
        "{} attempts from 10 users in 2 s",
        all.connect_errors
    );
}

/// A raw SSE target: answers the endpoint event, then counts how each connection ends.
async fn sse_target(fin: Arc<AtomicU64>, rst: Arc<AtomicU64>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (fin, rst) = (Arc::clone(&fin), Arc::clone(&rst));
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if !head.starts_with(b"GET /sse ") {
                    // Not a stream (the observers scrape for metrics): not counted.
                    let _ = sock
                        .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                let event = format!("event: endpoint\r\ndata: http://{addr}/message?session_id=1\r\n\r\n");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{event}\r\n",
                    event.len()
                );
                if sock.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) => {
                            fin.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                            rst.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        Err(_) => return,
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abrupt_and_rst_closes_really_close_the_socket() {
    let (fin, rst) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let addr = sse_target(Arc::clone(&fin), Arc::clone(&rst)).await;
    let s = scenario(&format!(
        r#"
[target]
url = "http://{addr}"
[load]
users = 6
duration = "2s"
[observe]
post_load = "0s"
[[actions]]
name = "drop"
kind = "sse"
hold = "20ms..50ms"
[[actions]]
name = "reset"
kind = "sse"
hold = "20ms..50ms"
rst = true
"#
    ));
    let out = run(s).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (server_fin, server_rst) = (fin.load(Ordering::Relaxed), rst.load(Ordering::Relaxed));
    eprintln!("client: {:?}; server saw {server_fin} FIN, {server_rst} RST", out.sse);
    assert!(out.sse.closed_abrupt > 10 && out.sse.closed_rst > 10, "{:?}", out.sse);
    assert_eq!(out.sse.open, 0);
    assert_eq!(
        server_rst, out.sse.closed_rst,
        "every reset reached the server as a reset"
    );
    assert_eq!(
        server_fin, out.sse.closed_abrupt,
        "every plain drop reached the server as a FIN"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_validate_against_the_schema_and_interrupts_are_marked() {
    let addr = http_target().await;
    let s = scenario(&format!(
        r#"
[target]
url = "http://{addr}"
[load]
users = 5
ramp_up = "1s"
duration = "30s"
think_time = "10ms"
threads = 3
[observe]
post_load = "1s"
[[actions]]
kind = "http"
path = "/ok"
"#
    ));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let interrupter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        tx.send_replace(true);
        tx
    });
    let started = Instant::now();
    let out = engine::run(s, RunOptions::default(), rx).await.unwrap();
    drop(interrupter.await);
    assert!(started.elapsed() < Duration::from_secs(8), "an interrupt stops the run");
    assert_eq!(out.completion, Completion::Interrupted);
    let results = Results::from_run(&out, None);
    assert!(!results.complete);
    assert!(results.totals.count > 50);
    assert_eq!(results.load.threads, Some(3), "the users ran on the threads asked for");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/run.json");
    results.write_atomically(&path).unwrap();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let schema: Value = serde_json::from_str(include_str!("../../../schemas/results.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(&written)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "results violate the schema:\n{}",
        problems.join("\n")
    );
    // And the reader takes it back, histograms included.
    let back = Results::read(&path).unwrap();
    let h = stampede_loadgen::results::decode_histogram(&back.actions[0].histogram).unwrap();
    assert_eq!(h.len(), back.actions[0].summary.count);
    // A results file is never left half-written: nothing else in the folder.
    assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
}

/// A target that accepts setup's entities and keeps what it was sent.
async fn recording_target(seen: Arc<std::sync::Mutex<Vec<(String, Value)>>>) -> SocketAddr {
    let record = |kind: &'static str, seen: Arc<std::sync::Mutex<Vec<(String, Value)>>>| {
        post(move |Json(body): Json<Value>| async move {
            seen.lock().unwrap().push((kind.to_owned(), body));
            Json(json!({"id": uuid::Uuid::new_v4().simple().to_string()}))
        })
    };
    let app = axum::Router::new()
        .route("/ok", get(|| async { "ok" }))
        .route("/gateways", record("gateway", Arc::clone(&seen)))
        // As a federating gateway lists its upstream's tools (setup waits for them).
        .route(
            "/tools",
            record("tool", Arc::clone(&seen))
                .get(|| async { Json(json!([{"id": "f1", "name": "gw-echo", "originalName": "echo"}])) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_upstream_is_what_seeded_gateways_federate_and_it_stops_with_the_run() {
    // SAFETY: set before any thread of this test reads the environment; other tests never read it.
    unsafe { std::env::set_var("STAMPEDE_BIN", env!("CARGO_BIN_EXE_stampede")) };
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let addr = recording_target(Arc::clone(&seen)).await;
    let s = scenario(&format!(
        r#"
[target]
url = "http://{addr}"
[upstream]
spawn = true
tools = 3
[setup]
gateways = 1
tools = 2
gateway_transport = "STREAMABLEHTTP"
teardown = false
[load]
users = 2
duration = "1s"
[observe]
post_load = "0s"
[[actions]]
kind = "http"
path = "/ok"
"#
    ));
    let out = run(s).await;
    let upstream = out.upstream.clone().expect("the run had an upstream");
    assert!(upstream.spawned);
    assert!(upstream.cpu_seconds.is_some(), "its CPU is read apart");
    let seen = seen.lock().unwrap().clone();
    let gateways: Vec<&Value> = seen.iter().filter(|(k, _)| k == "gateway").map(|(_, b)| b).collect();
    assert_eq!(gateways.len(), 1);
    assert_eq!(gateways[0]["url"], format!("{}/mcp?gateway=0", upstream.url));
    assert_eq!(gateways[0]["transport"], "STREAMABLEHTTP");
    let tools: Vec<&Value> = seen.iter().filter(|(k, _)| k == "tool").map(|(_, b)| b).collect();
    assert_eq!(tools.len(), 2);
    assert!(
        tools
            .iter()
            .all(|t| t["tool"]["url"] == format!("{}/rest/echo", upstream.url))
    );
    // Stopped with the run: nothing listens there any more.
    let port = upstream.url.rsplit(':').next().unwrap();
    assert!(std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err());
    let results = Results::from_run(&out, None);
    assert_eq!(results.upstream.unwrap().url, upstream.url);
}
