//! The 2026-07-28 era on `/mcp`: `server/discover`, the envelope and its routing headers checked
//! with the specification's codes and statuses, decorated results, no session — beside the session
//! era on the same endpoint; `subscriptions/listen` streams announcing real changes, and storms of
//! them dropped abruptly (fixed ends them, legacy leaves them spinning).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{Db, Gateway, TestDb, drop_abruptly, eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const V: &str = "2026-07-28";
const BOTH: &str = "application/json, text/event-stream";

fn meta(version: &str) -> Value {
    json!({"io.modelcontextprotocol/protocolVersion": version,
           "io.modelcontextprotocol/clientCapabilities": {},
           "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"}})
}

/// A stateless POST with the headers given (name, value), answered as (status, JSON-RPC message).
async fn post(gw: &Gateway, path: &str, headers: &[(&str, &str)], body: &Value) -> (StatusCode, Value, bool) {
    let mut req = gw
        .http
        .post(gw.url(path))
        .bearer_auth(&gw.token)
        .header("accept", BOTH)
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let session = resp.headers().contains_key("mcp-session-id");
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), session)
}

/// A well-formed stateless request: envelope and matching headers.
async fn request(gw: &Gateway, method: &str, mut params: Value) -> (StatusCode, Value) {
    params["_meta"] = meta(V);
    let name = protocol::header::name_param(method)
        .and_then(|k| params[k].as_str())
        .map(protocol::header::encode);
    let mut headers = vec![("mcp-protocol-version", V), ("mcp-method", method)];
    if let Some(n) = &name {
        headers.push(("mcp-name", n));
    }
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let (status, answer, session) = post(gw, "/mcp", &headers, &body).await;
    assert!(!session, "no session in the stateless era");
    (status, answer)
}

#[tokio::test]
async fn discover_and_the_methods_answer_decorated_results() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("READ_CACHE_MS", "2500")]).await;
    gw.tool("héllo wörld", None).await;

    let (status, d) = request(&gw, "server/discover", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let r = &d["result"];
    let versions = r["supportedVersions"].as_array().unwrap();
    assert!(
        versions.contains(&json!(V)) && versions.contains(&json!("2025-03-26")),
        "{r}"
    );
    assert_eq!(r["resultType"], "complete");
    assert_eq!(
        (r["ttlMs"].as_u64(), r["cacheScope"].as_str()),
        (Some(2500), Some("private"))
    );
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "stampede-gateway"
    );
    assert!(r["capabilities"]["tools"].is_object(), "{r}");

    let (status, list) = request(&gw, "tools/list", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["result"]["tools"][0]["name"], "héllo wörld");
    assert_eq!(list["result"]["ttlMs"], 2500);
    // A name that is not plain ASCII travels base64 in Mcp-Name.
    let (status, call) = request(
        &gw,
        "tools/call",
        json!({"name": "héllo wörld", "arguments": {"text": "hi"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{call}");
    assert_eq!(call["result"]["content"][0]["text"], "hi");
    assert_eq!(call["result"]["resultType"], "complete");
    assert!(call["result"].get("ttlMs").is_none(), "a call is not cacheable");
}

#[tokio::test]
async fn refusals_carry_the_specification_s_codes_and_statuses() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[]).await;
    let list = |params: Value| json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": params});
    let routed = [("mcp-protocol-version", V), ("mcp-method", "tools/list")];

    let (status, e, _) = post(&gw, "/mcp", &routed, &list(json!({}))).await;
    assert_eq!(
        (status, e["error"]["code"].as_i64(), e["id"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(-32602), Some(3))
    );
    let (status, e, _) = post(
        &gw,
        "/mcp",
        &[routed[0], ("mcp-method", "prompts/list")],
        &list(json!({"_meta": meta(V)})),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(-32020)),
        "Mcp-Method disagrees"
    );
    let (status, e, _) = post(&gw, "/mcp", &routed, &list(json!({"_meta": meta("2025-06-18")}))).await;
    assert_eq!(
        (status, e["error"]["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(-32020)),
        "the version header disagrees"
    );
    let newer = [("mcp-protocol-version", "2099-01-01"), ("mcp-method", "tools/list")];
    let (status, e, _) = post(&gw, "/mcp", &newer, &list(json!({"_meta": meta("2099-01-01")}))).await;
    assert_eq!(
        (status, e["error"]["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(-32022))
    );
    assert_eq!(e["error"]["data"]["requested"], "2099-01-01");
    assert!(e["error"]["data"]["supported"].as_array().unwrap().contains(&json!(V)));

    // Methods of the other era, and unknown ones: 404 with -32601.
    for method in ["initialize", "ping", "no/such"] {
        let (status, e) = request(&gw, method, json!({})).await;
        assert_eq!(
            (status, e["error"]["code"].as_i64()),
            (StatusCode::NOT_FOUND, Some(-32601)),
            "{method}"
        );
    }
    // A notification is acknowledged; there is no GET stream.
    let note = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}});
    let (status, _, _) = post(&gw, "/mcp", &[routed[0]], &note).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let resp = gw
        .http
        .get(gw.url("/mcp"))
        .bearer_auth(&gw.token)
        .header("accept", "text/event-stream")
        .header("mcp-protocol-version", V)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.headers()["allow"], "POST");
}

#[tokio::test]
async fn the_session_era_keeps_working_and_negotiates_its_newest_version() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[]).await;
    for (offered, answered) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-11-25", "2025-11-25"),
        (V, "2025-11-25"),
    ] {
        let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": offered, "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
        let (status, answer, session) = post(&gw, "/mcp", &[], &init).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(session, "initialize starts a session");
        assert_eq!(answer["result"]["protocolVersion"], answered, "offered {offered}");
        assert!(answer["result"].get("resultType").is_none(), "no stateless decoration");
    }
}

/// The official Python SDK's client (`mcp` from PyPI) in its default `auto` mode probes
/// `server/discover` first: it must reach the gateway in 2026-07-28 without falling back, list and
/// call a tool, and report what the gateway said it is.
#[tokio::test]
async fn the_official_sdk_client_reaches_the_gateway_in_the_stateless_era() {
    let Some(python) = testkit::McpSdk::python() else {
        return;
    };
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[]).await;
    gw.tool("echo", None).await;
    let report = testkit::McpSdk::client(&python, &gw.url("/mcp"), &gw.token, "auto", "echo").await;
    assert_eq!(report["protocol_version"], V, "{report}");
    assert_eq!(report["server_name"], "stampede-gateway", "{report}");
    assert!(report["tools"].as_array().unwrap().contains(&json!("echo")), "{report}");
    assert_eq!(report["call_text"], "sdk", "{report}");
    // The session era, on both transports: the SDK's newest session version is negotiated.
    for path in ["/mcp", "/sse"] {
        let report = testkit::McpSdk::client(&python, &gw.url(path), &gw.token, "legacy", "echo").await;
        assert_eq!(report["protocol_version"], "2025-11-25", "{path}: {report}");
        assert_eq!(report["call_text"], "sdk", "{path}: {report}");
    }
}

const LISTEN_ACTIVE: &str = "mcp_sessions_active{transport=\"listen\"}";

/// Open a listen stream (request id `id`) on a raw socket and read up to its first frame, the
/// acknowledgement: answers the socket and what was read.
async fn listen_raw(gw: &Gateway, id: u64) -> (TcpStream, String) {
    let addr = gw.base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
        "params": {"_meta": meta(V), "notifications": {"toolsListChanged": true}}})
    .to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nAccept: {BOTH}\r\n\
         Content-Type: application/json\r\nMCP-Protocol-Version: {V}\r\nMcp-Method: subscriptions/listen\r\n\
         Content-Length: {}\r\n\r\n{body}",
        gw.token,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let seen = read_until(&mut stream, "subscriptions/acknowledged").await;
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    assert!(seen.contains("text/event-stream"), "{seen}");
    (stream, seen)
}

/// Read from `stream` until what was read holds `needle`.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{needle} in time; read {:?}", String::from_utf8_lossy(&seen)))
            .unwrap();
        assert!(n > 0, "closed before {needle}: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(seen).unwrap()
}

#[tokio::test]
async fn a_listen_stream_acknowledges_then_announces_the_changes_asked_for() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("PROFILE", "fixed")]).await;
    let (mut stream, ack) = listen_raw(&gw, 41).await;
    assert!(ack.contains(r#""io.modelcontextprotocol/subscriptionId":41"#), "{ack}");
    assert!(ack.contains(r#""toolsListChanged":true"#), "{ack}");
    assert!(
        !ack.contains("promptsListChanged"),
        "only what was asked for is honoured: {ack}"
    );
    assert_eq!(gw.metric(LISTEN_ACTIVE).await, Some(1.0));

    // A prompt changes (not asked for), then a tool: only the tool is announced.
    gw.create("prompts", json!({"prompt": {"name": "p", "template": "t"}}))
        .await;
    gw.tool("fresh", None).await;
    let seen = read_until(&mut stream, "notifications/tools/list_changed").await;
    assert!(!seen.contains("prompts/list_changed"), "{seen}");
    assert!(
        seen.contains(r#""io.modelcontextprotocol/subscriptionId":41"#),
        "{seen}"
    );

    // Closing the stream is the cancellation: fixed ends it at once.
    drop(stream);
    eventually(Duration::from_secs(5), "the listen stream to end", || async {
        (gw.metric(LISTEN_ACTIVE).await == Some(0.0)).then_some(())
    })
    .await;
    assert_eq!(
        gw.metric("mcp_session_ends_total{transport=\"listen\",reason=\"client_gone\"}")
            .await,
        Some(1.0)
    );
}

const STORM: u64 = 300;

async fn listen_storm(gw: &Gateway) -> Vec<TcpStream> {
    let mut streams = Vec::new();
    for id in 0..STORM {
        streams.push(listen_raw(gw, id).await.0);
    }
    streams
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_ends_every_listen_stream_whose_client_left() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("PROFILE", "fixed"), ("SSE_KEEPALIVE_INTERVAL", "60")]).await;
    let streams = listen_storm(&gw).await;
    assert_eq!(gw.metric(LISTEN_ACTIVE).await, Some(STORM as f64));
    drop_abruptly(streams);
    eventually(Duration::from_secs(10), "every listen stream to end", || async {
        (gw.metric(LISTEN_ACTIVE).await == Some(0.0)).then_some(())
    })
    .await;
    let cpu = gw.cpu_over(Duration::from_secs(2)).await;
    eprintln!(
        "fixed: {STORM} listen streams ended; CPU after: {:.2} % of a core",
        cpu * 100.0
    );
    assert!(cpu < 0.01, "idle again: {:.2} % of a core", cpu * 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_leaves_the_listen_streams_spinning() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("PROFILE", "legacy"), ("SSE_KEEPALIVE_INTERVAL", "0.2")]).await;
    let streams = listen_storm(&gw).await;
    drop_abruptly(streams);
    tokio::time::sleep(Duration::from_millis(500)).await; // past the next keepalive
    let cpu = gw.cpu_over(Duration::from_secs(2)).await;
    let left = gw.metric(LISTEN_ACTIVE).await;
    eprintln!(
        "legacy: {left:?} listen streams left; CPU over 2 s: {:.0} % of a core",
        cpu * 100.0
    );
    assert_eq!(left, Some(STORM as f64), "nobody noticed they left");
    assert!(cpu > 0.5, "abandoned streams burn CPU: {:.1} % of a core", cpu * 100.0);
    assert!(gw.stop().await, "SIGTERM still stops it");
}

/// The specification's MUST against DNS rebinding: a browser's `Origin` that is neither loopback nor
/// allowed is refused 403 on the MCP endpoints; loopback and listed origins pass, and so does a
/// request without one.
#[tokio::test]
async fn a_foreign_origin_is_refused_on_the_mcp_endpoints() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("ALLOWED_ORIGINS", "https://app.example")]).await;
    let discover = json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta(V)}});
    let routed = [("mcp-protocol-version", V), ("mcp-method", "server/discover")];
    for (origin, expected) in [
        (Some("https://evil.example"), StatusCode::FORBIDDEN),
        (Some("http://localhost.evil.example"), StatusCode::FORBIDDEN),
        (Some("http://localhost:5173"), StatusCode::OK),
        (Some("http://127.0.0.1:8080"), StatusCode::OK),
        (Some("https://app.example"), StatusCode::OK),
        (None, StatusCode::OK),
    ] {
        let mut headers = routed.to_vec();
        if let Some(o) = origin {
            headers.push(("origin", o));
        }
        let (status, answer, _) = post(&gw, "/mcp", &headers, &discover).await;
        assert_eq!(status, expected, "{origin:?}: {answer}");
        if status == StatusCode::FORBIDDEN {
            assert_eq!(answer["error"]["code"], -32000, "{answer}");
        }
    }
    let sse = gw
        .http
        .get(gw.url("/sse"))
        .bearer_auth(&gw.token)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::FORBIDDEN, "the SSE transport too");
    let rpc = gw
        .http
        .post(gw.url("/rpc"))
        .bearer_auth(&gw.token)
        .header("origin", "https://evil.example")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rpc.status(), StatusCode::OK, "/rpc is not an MCP transport");
}
