//! Replicas on one PostgreSQL: a message posted to any replica reaches its session on the replica that
//! holds it, over the session bus (LISTEN/NOTIFY) — on both transports — and without the bus it does
//! not (404), which is what the bus is for.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{Db, Gateway, SseStream, TestDb, eventually};

const BOTH: &str = "application/json, text/event-stream";

async fn replicas(db: &TestDb, bus: bool) -> (Gateway, Gateway) {
    let mut env = vec![("PROFILE", "fixed"), ("SESSION_BUS_TIMEOUT_MS", "500")];
    if bus {
        env.push(("SESSION_BUS_URL", db.url.as_str()));
    }
    (Gateway::start(db, &env).await, Gateway::start(db, &env).await)
}

fn mcp(gw: &Gateway, method: reqwest::Method, session: Option<&str>) -> reqwest::RequestBuilder {
    let mut req = gw
        .http
        .request(method, gw.url("/mcp"))
        .bearer_auth(&gw.token)
        .header("accept", BOTH)
        .header("content-type", "application/json");
    if let Some(s) = session {
        req = req
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-03-26");
    }
    req
}

async fn initialize(gw: &Gateway) -> String {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let resp = mcp(gw, reqwest::Method::POST, None)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

async fn ping(gw: &Gateway, session: &str) -> StatusCode {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "ping"});
    mcp(gw, reqwest::Method::POST, Some(session))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
}

async fn streamable_active(gw: &Gateway) -> f64 {
    gw.metric("mcp_sessions_active{transport=\"streamable_http\"}")
        .await
        .unwrap_or(-1.0)
}

#[tokio::test]
async fn a_message_posted_to_any_replica_reaches_its_session() {
    if testkit::no_pg() {
        return;
    }
    let db = TestDb::new(Db::Postgres).await;
    let (a, b) = replicas(&db, true).await;

    // HTTP+SSE: the stream on A, the message posted to B, the reply on A's stream.
    let mut stream = SseStream::open(&a, "/sse").await;
    let endpoint = stream.endpoint().await;
    stream.initialize(&a, &endpoint).await;
    let session = endpoint.split("session_id=").nth(1).expect("a session id").to_owned();
    let resp = b
        .http
        .post(b.url(&format!("/message?session_id={session}")))
        .bearer_auth(&b.token)
        .json(&json!({"jsonrpc": "2.0", "id": 42, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "B forwards to A");
    let reply = stream.next_message().await;
    assert_eq!(reply["id"], 42, "{reply}");
    assert!(reply["result"]["tools"].is_array(), "{reply}");

    // Streamable HTTP: initialized on A; requests, the GET stream and the DELETE through B.
    let id = initialize(&a).await;
    assert_eq!(ping(&b, &id).await, StatusCode::OK, "a request through B is answered");
    let listen = mcp(&b, reqwest::Method::GET, Some(&id)).send().await.unwrap();
    assert_eq!(listen.status(), StatusCode::OK);
    assert!(
        listen.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "the GET stream is relayed"
    );
    assert_eq!(streamable_active(&a).await, 1.0, "the session lives on A");
    assert_eq!(streamable_active(&b).await, 0.0, "and only there");
    // The client drops the stream it holds through B: A sees its client gone and ends the session.
    drop(listen);
    eventually(Duration::from_secs(10), "the session ends on A", || async {
        (streamable_active(&a).await == 0.0).then_some(())
    })
    .await;
    assert_eq!(
        ping(&b, &id).await,
        StatusCode::NOT_FOUND,
        "an ended session is gone everywhere"
    );

    let id = initialize(&a).await;
    let resp = mcp(&b, reqwest::Method::DELETE, Some(&id)).send().await.unwrap();
    assert!(resp.status().is_success(), "DELETE through B: {}", resp.status());
    assert_eq!(ping(&a, &id).await, StatusCode::NOT_FOUND, "deleted on A");

    // A session no replica holds is a 404 once the bus has had no answer.
    assert_eq!(ping(&b, "no-such-session").await, StatusCode::NOT_FOUND);
    let body: Value = mcp(&b, reqwest::Method::POST, Some("no-such-session"))
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["code"], -32001, "{body}");
}

#[tokio::test]
async fn without_the_bus_a_replica_does_not_know_another_s_sessions() {
    if testkit::no_pg() {
        return;
    }
    let db = TestDb::new(Db::Postgres).await;
    let (a, b) = replicas(&db, false).await;
    let id = initialize(&a).await;
    assert_eq!(ping(&a, &id).await, StatusCode::OK);
    assert_eq!(ping(&b, &id).await, StatusCode::NOT_FOUND);
}
