//! Abrupt disconnects on real sockets. Fixed: every session ends and leaves the registry, and the
//! gateway returns to idle by itself. A client that stops reading is ended by the send timeout and
//! its connection cut. Legacy: abandoned sessions stay registered and burn CPU — and the process
//! still shuts down cleanly on SIGTERM.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use testkit::{Db, Gateway, TestDb, drop_abruptly, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const STORM: usize = 500;

/// Open `GET /sse` on a raw socket and read until the first keepalive: the session is registered.
/// Answers the stream and the session's message endpoint.
async fn open_raw(addr: std::net::SocketAddr, token: String, recv_buffer: Option<u32>) -> (TcpStream, String) {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let mut stream = socket.connect(addr).await.expect("connect");
    let request = format!(
        "GET /sse HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while !seen.windows(12).any(|w| w == b": keepalive\r") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("SSE handshake in time")
            .unwrap();
        assert!(n > 0, "stream closed during the handshake");
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let endpoint = text
        .split("event: endpoint\r\ndata: ")
        .nth(1)
        .and_then(|rest| rest.split("\r\n").next())
        .expect("endpoint frame before the keepalive")
        .to_owned();
    (stream, endpoint)
}

/// Open `STORM` sessions, 50 at a time.
async fn storm(gw: &Gateway) -> Vec<TcpStream> {
    let addr: std::net::SocketAddr = gw.base.strip_prefix("http://").unwrap().parse().unwrap();
    let mut streams = Vec::with_capacity(STORM);
    while streams.len() < STORM {
        let mut batch = tokio::task::JoinSet::new();
        for _ in 0..50.min(STORM - streams.len()) {
            batch.spawn(open_raw(addr, gw.token.clone(), None));
        }
        streams.extend(batch.join_all().await.into_iter().map(|(stream, _)| stream));
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_after_an_abrupt_storm_every_session_ends_and_the_gateway_goes_idle() {
    let db = TestDb::new(Db::Sqlite).await;
    // A short keepalive would hide a detector that only notices at the next write: keep it long.
    let gw = Gateway::start(&db, &[("PROFILE", "fixed"), ("SSE_KEEPALIVE_INTERVAL", "60")]).await;
    let streams = storm(&gw).await;
    assert_eq!(
        gw.metric("mcp_sessions_active{transport=\"sse\"}").await,
        Some(STORM as f64)
    );

    let dropped = Instant::now();
    drop_abruptly(streams);
    eventually(
        Duration::from_secs(10),
        "every session to leave the registry",
        || async { (gw.metric("mcp_sessions_active{transport=\"sse\"}").await == Some(0.0)).then_some(()) },
    )
    .await;
    eprintln!(
        "{STORM} abrupt disconnects: registry empty after {:?}",
        dropped.elapsed()
    );
    assert_eq!(
        gw.metric("mcp_session_ends_total{transport=\"sse\",reason=\"client_gone\"}")
            .await,
        Some(STORM as f64)
    );

    let cpu = gw.cpu_over(Duration::from_secs(3)).await;
    eprintln!(
        "gateway CPU over the 3 s after the storm: {:.2} % of a core",
        cpu * 100.0
    );
    assert!(
        cpu < 0.05,
        "the gateway returns to idle: {:.1} % of a core",
        cpu * 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_ended_by_the_send_timeout_and_cut() {
    let db = TestDb::new(Db::Sqlite).await;
    // Requests without MCP's handshake, served: large replies are what fill the buffers here.
    let gw = Gateway::start(
        &db,
        &[
            ("PROFILE", "fixed"),
            ("SSE_SEND_TIMEOUT", "0.5"),
            ("SSE_REQUIRE_INITIALIZE", "false"),
        ],
    )
    .await;
    gw.tool("echo", None).await;
    let addr: std::net::SocketAddr = gw.base.strip_prefix("http://").unwrap().parse().unwrap();
    let (mut stalled, endpoint) = open_raw(addr, gw.token.clone(), Some(4096)).await;
    let mut buf = [0u8; 4096];

    // Large replies until the client's buffers, the kernel's and the session's queue are full.
    let text = "x".repeat(64 * 1024);
    let started = Instant::now();
    let mut posts = 0;
    while gw
        .metric("mcp_session_ends_total{transport=\"sse\",reason=\"send_timeout\"}")
        .await
        != Some(1.0)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no send timeout after {posts} replies"
        );
        let resp = gw
            .http
            .post(&endpoint)
            .bearer_auth(&gw.token)
            .json(&json!({"jsonrpc": "2.0", "id": posts, "method": "tools/call",
                          "params": {"name": "echo", "arguments": {"text": text}}}))
            .send()
            .await
            .unwrap();
        if resp.status() == StatusCode::NOT_FOUND {
            break;
        }
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        posts += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("send timeout after {posts} replies of 64 KiB to a client that does not read");
    assert_eq!(
        gw.metric("mcp_session_ends_total{transport=\"sse\",reason=\"send_timeout\"}")
            .await,
        Some(1.0)
    );
    assert_eq!(gw.metric("mcp_sessions_active{transport=\"sse\"}").await, Some(0.0));
    let resp = gw
        .http
        .post(&endpoint)
        .bearer_auth(&gw.token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "the session is gone");

    // The connection was cut: reading what is left ends in EOF or a reset, not a hang.
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        let mut total = 0usize;
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n,
            }
        }
    })
    .await
    .expect("the gateway closed the stalled connection");
    eprintln!("read {drained} bytes left in the socket before it closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_abandoned_sessions_stay_and_burn_cpu_and_sigterm_still_stops_it() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("PROFILE", "legacy"), ("SSE_KEEPALIVE_INTERVAL", "0.2")]).await;
    let streams = storm(&gw).await;
    drop_abruptly(streams);
    tokio::time::sleep(Duration::from_millis(500)).await; // past the next keepalive: every producer now retries

    let cpu = gw.cpu_over(Duration::from_secs(2)).await;
    eprintln!(
        "legacy: gateway CPU over 2 s after the storm: {:.0} % of a core",
        cpu * 100.0
    );
    assert!(cpu > 0.5, "abandoned sessions burn CPU: {:.1} % of a core", cpu * 100.0);
    let start = Instant::now();
    assert_eq!(
        gw.metric("mcp_sessions_active{transport=\"sse\"}").await,
        Some(STORM as f64),
        "nobody noticed they left"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "the gateway still answers while it spins"
    );
    assert_eq!(
        gw.metric("mcp_session_ends_total{transport=\"sse\",reason=\"client_gone\"}")
            .await,
        Some(0.0)
    );

    let stopping = Instant::now();
    assert!(
        gw.stop().await,
        "SIGTERM ends the spinning sessions and the process exits 0"
    );
    eprintln!("legacy: stopped {:?} after SIGTERM", stopping.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_detection_off_the_rapid_yield_detector_still_ends_the_spin() {
    let db = TestDb::new(Db::Sqlite).await;
    // The fixed profile with only disconnect detection turned off: the last line of defence remains.
    let gw = Gateway::start(
        &db,
        &[
            ("PROFILE", "fixed"),
            ("SSE_DISCONNECT_DETECTION", "off"),
            ("SSE_KEEPALIVE_INTERVAL", "0.2"),
        ],
    )
    .await;
    let addr: std::net::SocketAddr = gw.base.strip_prefix("http://").unwrap().parse().unwrap();
    let mut streams = Vec::new();
    for _ in 0..50 {
        streams.push(open_raw(addr, gw.token.clone(), None).await.0);
    }
    drop_abruptly(streams);
    eventually(
        Duration::from_secs(10),
        "the detector to end every spinning session",
        || async { (gw.metric("mcp_sessions_active{transport=\"sse\"}").await == Some(0.0)).then_some(()) },
    )
    .await;
    assert_eq!(
        gw.metric("mcp_session_ends_total{transport=\"sse\",reason=\"spin_detected\"}")
            .await,
        Some(50.0)
    );
    assert_eq!(
        gw.metric("mcp_session_ends_total{transport=\"sse\",reason=\"client_gone\"}")
            .await,
        Some(0.0)
    );
    let cpu = gw.cpu_over(Duration::from_secs(1)).await;
    assert!(cpu < 0.05, "idle again: {:.1} % of a core", cpu * 100.0);
}
