//! Attacks a hostile client tried on the gateway (docs/reliability.md's table), each reproduced.

use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::{Db, Gateway, SseStream, TestDb};

/// The gateway process's resident memory, in MiB.
fn rss_mib(gw: &Gateway) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.pid())).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    kib / 1024.0
}

#[tokio::test]
async fn a_prompt_template_bomb_is_refused_at_the_cap_and_values_are_never_expanded_again() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[]).await;
    // 13,000 placeholders: with an 80 KB value, 1 GB if every one were filled.
    gw.create(
        "prompts",
        json!({"prompt": {"name": "bomb", "template": "{{a}}".repeat(13_000),
            "arguments": [{"name": "a", "required": true}]}}),
    )
    .await;
    let (_, r) = gw
        .rpc(
            "prompts/get",
            json!({"name": "bomb", "arguments": {"a": "x".repeat(80_000)}}),
        )
        .await;
    let message = r["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(message.contains("PROMPT_MAX_BYTES"), "{message}");
    assert!(rss_mib(&gw) < 256.0, "the gateway holds {} MiB", rss_mib(&gw));

    // A value holding a placeholder is text, not another expansion.
    gw.create(
        "prompts",
        json!({"prompt": {"name": "chain", "template": "{{a}}{{b}}",
            "arguments": [{"name": "a"}, {"name": "b"}]}}),
    )
    .await;
    let (_, r) = gw
        .rpc(
            "prompts/get",
            json!({"name": "chain", "arguments": {"a": "{{b}}{{b}}", "b": "B"}}),
        )
        .await;
    assert_eq!(r["result"]["messages"][0]["content"]["text"], "{{b}}{{b}}B", "{r}");
}

const BOTH: &str = "application/json, text/event-stream";

/// `initialize` on `/mcp` with `token`: the status and the session id.
async fn initialize(gw: &Gateway, token: &str) -> (StatusCode, Option<String>) {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let resp = gw
        .http
        .post(gw.url("/mcp"))
        .bearer_auth(token)
        .header("accept", BOTH)
        .json(&body)
        .send()
        .await
        .unwrap();
    let session = resp
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    (resp.status(), session)
}

/// A request on a session with `token`: its status.
async fn on_session(gw: &Gateway, token: &str, method: Method, session: &str) -> StatusCode {
    let mut req = gw
        .http
        .request(method.clone(), gw.url("/mcp"))
        .bearer_auth(token)
        .header("accept", BOTH)
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-06-18");
    if method == Method::POST {
        req = req.json(&json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}));
    }
    req.send().await.unwrap().status()
}

#[tokio::test]
async fn a_session_answers_only_the_subject_that_opened_it() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[]).await;
    let mallory = testkit::token_with(json!({"sub": "mallory@example.com"}));
    let (status, session) = initialize(&gw, &gw.token).await;
    assert_eq!(status, StatusCode::OK);
    let session = session.unwrap();
    // Another subject neither uses it nor ends it, and is not told it exists.
    assert_eq!(
        on_session(&gw, &mallory, Method::POST, &session).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        on_session(&gw, &mallory, Method::DELETE, &session).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(on_session(&gw, &gw.token, Method::POST, &session).await, StatusCode::OK);

    // HTTP+SSE the same: the message endpoint is the owner's.
    let mut stream = SseStream::open(&gw, "/sse").await;
    let endpoint = stream.endpoint().await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let post = |token: &str| gw.http.post(&endpoint).bearer_auth(token.to_owned()).json(&ping).send();
    assert_eq!(post(&mallory).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(post(&gw.token).await.unwrap().status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn sessions_past_a_cap_are_refused_counted_and_admitted_again_when_one_ends() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("MAX_SESSIONS", "5"), ("MAX_SESSIONS_PER_SUBJECT", "3")]).await;
    let other = testkit::token_with(json!({"sub": "other@example.com"}));
    let mut mine = Vec::new();
    for _ in 0..3 {
        let (status, session) = initialize(&gw, &gw.token).await;
        assert_eq!(status, StatusCode::OK);
        mine.push(session.unwrap());
    }
    assert_eq!(initialize(&gw, &gw.token).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(initialize(&gw, &other).await.0, StatusCode::OK);
    assert_eq!(initialize(&gw, &other).await.0, StatusCode::OK);
    // Five held: the gateway is full for everyone, listen streams and HTTP+SSE too.
    assert_eq!(initialize(&gw, &other).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let sse = gw.http.get(gw.url("/sse")).bearer_auth(&other).send().await.unwrap();
    assert_eq!(sse.status(), StatusCode::SERVICE_UNAVAILABLE);
    let detail: serde_json::Value = sse.json().await.unwrap();
    assert!(detail["detail"].as_str().unwrap().contains("MAX_SESSIONS"), "{detail}");
    let refused = |cap: &str| format!("mcp_sessions_refused_total{{transport=\"streamable_http\",cap=\"{cap}\"}}");
    assert_eq!(gw.metric(&refused("subject")).await, Some(1.0));
    assert_eq!(gw.metric(&refused("total")).await, Some(1.0));

    assert_eq!(
        on_session(&gw, &gw.token, Method::DELETE, &mine[0]).await,
        StatusCode::OK
    );
    testkit::eventually(
        std::time::Duration::from_secs(5),
        "room for a session again",
        || async { (initialize(&gw, &gw.token).await.0 == StatusCode::OK).then_some(()) },
    )
    .await;
}

/// A server that answers every request with `head` and then `body_chunk` over and over until the
/// client hangs up.
async fn answering(head: &'static str, body_chunk: &'static [u8]) -> String {
    use tokio::io::AsyncWriteExt as _;
    testkit::tcp_server(move |mut sock| async move {
        let mut buf = Vec::new();
        if testkit::read_request(&mut sock, &mut buf).await.is_none() || sock.write_all(head.as_bytes()).await.is_err()
        {
            return;
        }
        while !body_chunk.is_empty() && sock.write_all(body_chunk).await.is_ok() {}
    })
    .await
}

/// A REST tool at `url`, called: the JSON-RPC answer.
async fn call_rest_tool(gw: &Gateway, name: &str, url: &str) -> serde_json::Value {
    gw.create(
        "tools",
        json!({"tool": {"name": name, "url": url, "integration_type": "REST", "request_type": "GET"}}),
    )
    .await;
    gw.rpc("tools/call", json!({"name": name, "arguments": {}})).await.1
}

const ZEROS: &[u8] = &[b'0'; 64 * 1024];

#[tokio::test]
async fn an_endless_answer_is_cut_at_the_cap_and_the_gateway_stays_small() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[]).await;
    // Announced: refused before a byte of the body is read. Chunked without end: counted as it comes.
    let announced = answering("HTTP/1.1 200 OK\r\ncontent-length: 536870912\r\n\r\n", ZEROS).await;
    let chunk: &'static [u8] = format!("4000\r\n{}\r\n", "0".repeat(0x4000)).into_bytes().leak();
    let chunked = answering("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", chunk).await;
    for (name, url) in [("announced", announced), ("chunked", chunked)] {
        let r = call_rest_tool(&gw, name, &format!("{url}/big")).await;
        let message = r["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("UPSTREAM_MAX_BYTES"), "{name}: {r}");
    }
    assert!(rss_mib(&gw) < 256.0, "the gateway holds {} MiB", rss_mib(&gw));
}

#[tokio::test]
async fn requests_to_loopback_link_local_and_private_addresses_are_refused_unless_allowed() {
    let db = TestDb::new(Db::Sqlite).await;
    let upstream = testkit::spawn_upstream(&[]);
    let port = upstream.url.rsplit(':').next().unwrap().to_owned();
    let strict = Gateway::federating(&db, &[("OUTBOUND_ALLOW", "")]).await;
    // Federation: a literal loopback address, and a name that resolves to one.
    for host in ["127.0.0.1", "localhost"] {
        let (status, body) = strict
            .post(
                "/gateways",
                json!({"name": format!("up-{host}"), "url": format!("http://{host}:{port}/mcp"), "transport": "STREAMABLEHTTP"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert!(body["detail"].as_str().unwrap().contains("outbound policy"), "{body}");
    }
    // A REST tool aimed at a cloud's metadata service.
    let r = call_rest_tool(&strict, "metadata", "http://169.254.169.254/latest/meta-data/").await;
    assert!(r["error"]["message"].as_str().unwrap().contains("link-local"), "{r}");

    // Loopback allowed: a redirect from there to the metadata service is still refused.
    let other_db = TestDb::new(Db::Sqlite).await;
    let allowed = Gateway::start(&other_db, &[("OUTBOUND_ALLOW", "loopback")]).await;
    let redirecting = answering(
        "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data/\r\ncontent-length: 0\r\n\r\n",
        b"",
    )
    .await;
    let r = call_rest_tool(&allowed, "hop", &format!("{redirecting}/")).await;
    assert!(
        r["error"]["message"].as_str().unwrap().contains("outbound policy"),
        "{r}"
    );
}
