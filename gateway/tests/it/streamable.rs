//! Streamable HTTP on `/mcp`: the specification's wire rules (sessions, Accept, Content-Type,
//! protocol version, JSON or stream answers, GET stream, DELETE), idle expiry, and abrupt disconnect
//! storms on real sockets — fixed ends every session at once, legacy leaves them spinning.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{Db, Gateway, TestDb, drop_abruptly, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BOTH: &str = "application/json, text/event-stream";

fn init_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
           "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
}

async fn post(gw: &Gateway, session: Option<&str>, accept: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = gw
        .http
        .post(gw.url("/mcp"))
        .bearer_auth(&gw.token)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    if let Some(s) = session {
        req = req
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-03-26");
    }
    req.send().await.unwrap()
}

async fn initialize(gw: &Gateway) -> String {
    let resp = post(gw, None, Some(BOTH), &init_body()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let id = resp.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let body: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-03-26");
    id
}

/// The JSON-RPC message of an answer, whichever way it came.
async fn message(resp: reqwest::Response) -> (String, Value) {
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    let text = resp.text().await.unwrap();
    let json = if ct.starts_with("text/event-stream") {
        let data = text
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("a data line");
        serde_json::from_str(data).unwrap()
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (ct, json)
}

#[tokio::test]
async fn sessions_follow_the_specification_wire_rules() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("PROFILE", "fixed")]).await;
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});

    // Refusals, each JSON-RPC shaped.
    // (reqwest sends `Accept: */*` when none is given: a missing Accept is refused the same way.)
    let resp = post(&gw, None, Some("text/html"), &init_body()).await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_ACCEPTABLE,
        "neither JSON nor a stream accepted"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["jsonrpc"], "2.0");
    assert!(body["error"]["message"].as_str().unwrap().contains("Accept"));
    let resp = gw
        .http
        .post(gw.url("/mcp"))
        .bearer_auth(&gw.token)
        .header("accept", BOTH)
        .header("content-type", "text/plain")
        .body(init_body().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        post(&gw, None, Some(BOTH), &ping).await.status(),
        StatusCode::BAD_REQUEST,
        "no session"
    );
    let resp = post(&gw, Some("nope"), Some(BOTH), &ping).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "unknown session");
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], -32001);

    // A session: JSON answers, a stream when the client accepts only that, 202 for a notification.
    let id = initialize(&gw).await;
    let (ct, answer) = message(post(&gw, Some(&id), Some(BOTH), &ping).await).await;
    assert_eq!((ct.as_str(), &answer["id"]), ("application/json", &json!(2)));
    let list = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"});
    let (ct, answer) = message(post(&gw, Some(&id), Some("text/event-stream"), &list).await).await;
    assert_eq!(ct, "text/event-stream");
    assert!(answer["result"]["tools"].is_array(), "{answer}");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(
        post(&gw, Some(&id), Some(BOTH), &note).await.status(),
        StatusCode::ACCEPTED
    );
    let resp = gw
        .http
        .post(gw.url("/mcp"))
        .bearer_auth(&gw.token)
        .header("accept", BOTH)
        .header("content-type", "application/json")
        .header("mcp-session-id", &id)
        .header("mcp-protocol-version", "1999-01-01")
        .body(ping.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "unsupported protocol version");
    assert_eq!(
        gw.metric("mcp_sessions_active{transport=\"streamable_http\"}").await,
        Some(1.0)
    );

    // The GET stream: one at a time.
    let get = || {
        gw.http
            .get(gw.url("/mcp"))
            .bearer_auth(&gw.token)
            .header("accept", "text/event-stream")
            .header("mcp-session-id", &id)
            .send()
    };
    let stream = get().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    assert_eq!(get().await.unwrap().status(), StatusCode::CONFLICT, "a second stream");
    // HTTP+SSE's message endpoint is not this session's: its id is unknown there.
    let resp = gw
        .http
        .post(gw.url(&format!("/message?session_id={id}")))
        .bearer_auth(&gw.token)
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND, "a Streamable HTTP id on /message");

    // DELETE ends the session (and its stream); the id is then unknown.
    let resp = gw
        .http
        .delete(gw.url("/mcp"))
        .bearer_auth(&gw.token)
        .header("mcp-session-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ended = tokio::time::timeout(Duration::from_secs(5), stream.bytes())
        .await
        .expect("the stream ends with its session");
    assert!(ended.is_ok() || ended.is_err());
    eventually(Duration::from_secs(5), "the session to leave", || async {
        (gw.metric("mcp_sessions_active{transport=\"streamable_http\"}").await == Some(0.0)).then_some(())
    })
    .await;
    assert_eq!(
        post(&gw, Some(&id), Some(BOTH), &ping).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        gw.metric("mcp_session_ends_total{transport=\"streamable_http\",reason=\"deleted\"}")
            .await,
        Some(1.0)
    );
}

#[tokio::test]
async fn answers_stream_when_set_and_idle_sessions_expire() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(
        &db,
        &[
            ("PROFILE", "fixed"),
            ("STREAMABLE_HTTP_REPLIES", "sse"),
            ("MCP_SESSION_IDLE_TIMEOUT", "0.5"),
        ],
    )
    .await;
    let resp = post(&gw, None, Some(BOTH), &init_body()).await;
    let id = resp.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let (ct, answer) = message(resp).await;
    assert_eq!(ct, "text/event-stream", "STREAMABLE_HTTP_REPLIES=sse");
    assert_eq!(answer["result"]["serverInfo"]["name"], "stampede-gateway");
    let (ct, _) = message(
        post(
            &gw,
            Some(&id),
            Some("application/json"),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}),
        )
        .await,
    )
    .await;
    assert_eq!(ct, "application/json", "a client that accepts only JSON gets JSON");
    eventually(Duration::from_secs(5), "the idle session to expire", || async {
        (gw.metric("mcp_session_ends_total{transport=\"streamable_http\",reason=\"expired\"}")
            .await
            == Some(1.0))
        .then_some(())
    })
    .await;
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    assert_eq!(
        post(&gw, Some(&id), Some(BOTH), &ping).await.status(),
        StatusCode::NOT_FOUND
    );
}

const STORM: usize = 300;

/// Initialize a session and open its GET stream on a raw socket, read up to the stream's head.
async fn listen_raw(gw: &Gateway) -> TcpStream {
    let id = initialize(gw).await;
    let addr = gw.base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {id}\r\n\r\n",
        gw.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("the stream's head in time")
            .unwrap();
        assert!(n > 0, "closed before the head");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&seen));
    stream
}

async fn storm(gw: &Gateway) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(STORM);
    for _ in 0..STORM {
        streams.push(listen_raw(gw).await);
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_ends_every_session_whose_client_left_its_stream() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("PROFILE", "fixed"), ("SSE_KEEPALIVE_INTERVAL", "60")]).await;
    let streams = storm(&gw).await;
    let active = "mcp_sessions_active{transport=\"streamable_http\"}";
    assert_eq!(gw.metric(active).await, Some(STORM as f64));
    drop_abruptly(streams);
    eventually(Duration::from_secs(10), "every session to end", || async {
        (gw.metric(active).await == Some(0.0)).then_some(())
    })
    .await;
    let gone = gw
        .metric("mcp_session_ends_total{transport=\"streamable_http\",reason=\"client_gone\"}")
        .await;
    assert_eq!(gone, Some(STORM as f64));
    let cpu = gw.cpu_over(Duration::from_secs(2)).await;
    eprintln!(
        "fixed: {STORM} sessions ended client_gone; CPU after: {:.2} % of a core",
        cpu * 100.0
    );
    assert!(cpu < 0.01, "idle again: {:.2} % of a core", cpu * 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_leaves_the_sessions_spinning() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("PROFILE", "legacy"), ("SSE_KEEPALIVE_INTERVAL", "0.2")]).await;
    let streams = storm(&gw).await;
    drop_abruptly(streams);
    tokio::time::sleep(Duration::from_millis(500)).await; // past the next keepalive
    let cpu = gw.cpu_over(Duration::from_secs(2)).await;
    let left = gw.metric("mcp_sessions_active{transport=\"streamable_http\"}").await;
    eprintln!(
        "legacy: {left:?} sessions left; CPU over 2 s: {:.0} % of a core",
        cpu * 100.0
    );
    assert_eq!(left, Some(STORM as f64), "nobody noticed they left");
    assert!(cpu > 0.5, "abandoned streams burn CPU: {:.1} % of a core", cpu * 100.0);
    assert!(gw.stop().await, "SIGTERM still stops it");
}

#[tokio::test]
async fn a_session_is_not_idle_while_a_request_runs() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("PROFILE", "fixed"), ("MCP_SESSION_IDLE_TIMEOUT", "0.3")]).await;
    gw.tool("sleep", None).await;
    let id = initialize(&gw).await;
    // The call takes longer than the idle timeout; the session must outlive it.
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "sleep", "arguments": {"ms": 900}}});
    let (_, answer) = message(post(&gw, Some(&id), Some(BOTH), &call).await).await;
    assert_eq!(answer["result"]["content"][0]["text"], "slept 900 ms", "{answer}");
    let ping = json!({"jsonrpc": "2.0", "id": 3, "method": "ping"});
    assert_eq!(
        post(&gw, Some(&id), Some(BOTH), &ping).await.status(),
        StatusCode::OK,
        "the session is still there after its long request"
    );
    eventually(Duration::from_secs(5), "then it expires, idle", || async {
        (gw.metric("mcp_session_ends_total{transport=\"streamable_http\",reason=\"expired\"}")
            .await
            == Some(1.0))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_request_without_accept_is_refused_with_406() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("PROFILE", "fixed")]).await;
    let addr = gw.base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = init_body().to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        gw.token,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 406"), "{answer}");
    assert!(answer.contains("\"jsonrpc\":\"2.0\""), "JSON-RPC shaped: {answer}");
}
