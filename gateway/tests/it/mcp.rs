//! MCP over JSON-RPC (`POST /rpc`) and SSE sessions: methods, error codes, frame format and order,
//! the message round trip on both paths, keepalives, unknown sessions, auth.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::{Db, Gateway, SseStream, TestDb, both};

both!(rpc_methods_answer_as_api_md, rpc_errors_have_their_codes);

async fn rpc_methods_answer_as_api_md(db: Db) {
    let db = TestDb::new(db).await;
    let gw = Gateway::start(&db, &[]).await;
    let echo = gw.tool("echo", None).await;
    let time = gw.tool("time", None).await;
    gw.create(
        "tools",
        json!({"tool": {"name": "sleep", "description": "sleeps",
        "input_schema": {"type": "object", "properties": {"ms": {"type": "integer"}}}}}),
    )
    .await;
    let sid = gw
        .create("servers", json!({"server": {"name": "s", "associated_tools": [echo]}}))
        .await;
    gw.create(
        "resources",
        json!({"resource": {"uri": "file:///a.txt", "name": "a", "content": "alpha", "mimeType": "text/plain"}}),
    )
    .await;
    gw.create(
        "prompts",
        json!({"prompt": {"name": "greet", "description": "says hello", "template": "Hello {{name}}!",
        "arguments": [{"name": "name", "required": true}]}}),
    )
    .await;

    let (status, r) = gw
        .rpc(
            "initialize",
            json!({"protocolVersion": "2025-03-26", "capabilities": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["jsonrpc"], "2.0");
    assert_eq!(r["id"], 1);
    assert_eq!(r["result"]["protocolVersion"], "2025-03-26");
    assert!(r["result"]["capabilities"]["tools"].is_object());
    assert_eq!(r["result"]["serverInfo"]["name"], "stampede-gateway");
    assert_eq!(gw.rpc("ping", json!({})).await.1["result"], json!({}));

    let (_, r) = gw.rpc("tools/list", json!({})).await;
    let names: Vec<&str> = r["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["echo", "sleep", "time"]);
    let sleep = &r["result"]["tools"][1];
    assert_eq!(sleep["description"], "sleeps");
    assert_eq!(sleep["inputSchema"]["properties"]["ms"]["type"], "integer");
    let (_, r) = gw.rpc("tools/list", json!({"server_id": sid})).await;
    assert_eq!(
        r["result"]["tools"].as_array().unwrap().len(),
        1,
        "narrowed to the server's tools"
    );
    assert_eq!(r["result"]["tools"][0]["name"], "echo");
    // The list is served from memory between writes: a toggle shows at once, both ways.
    let listed = |r: &Value| -> Vec<String> {
        r["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(gw.toggle("tools", &time, false).await.0, StatusCode::OK);
    assert_eq!(listed(&gw.rpc("tools/list", json!({})).await.1), ["echo", "sleep"]);
    assert_eq!(gw.toggle("tools", &time, true).await.0, StatusCode::OK);
    assert_eq!(
        listed(&gw.rpc("tools/list", json!({})).await.1),
        ["echo", "sleep", "time"]
    );

    let (_, r) = gw
        .rpc("tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}))
        .await;
    assert_eq!(
        r["result"],
        json!({"content": [{"type": "text", "text": "hi"}], "isError": false})
    );
    let (_, r) = gw.rpc("tools/call", json!({"name": "time", "arguments": {}})).await;
    assert!(
        r["result"]["content"][0]["text"].as_str().unwrap().starts_with("20"),
        "{r}"
    );
    let start = Instant::now();
    let (_, r) = gw
        .rpc("tools/call", json!({"name": "sleep", "arguments": {"ms": 150}}))
        .await;
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(r["result"]["content"][0]["text"], "slept 150 ms");

    let (_, r) = gw.rpc("resources/list", json!({})).await;
    assert_eq!(r["result"]["resources"][0]["uri"], "file:///a.txt");
    assert_eq!(r["result"]["resources"][0]["mimeType"], "text/plain");
    let (_, r) = gw.rpc("resources/read", json!({"uri": "file:///a.txt"})).await;
    assert_eq!(
        r["result"]["contents"],
        json!([{"uri": "file:///a.txt", "mimeType": "text/plain", "text": "alpha"}])
    );

    let (_, r) = gw.rpc("prompts/list", json!({})).await;
    assert_eq!(r["result"]["prompts"][0]["name"], "greet");
    assert_eq!(r["result"]["prompts"][0]["arguments"][0]["name"], "name");
    let (_, r) = gw
        .rpc("prompts/get", json!({"name": "greet", "arguments": {"name": "Ada"}}))
        .await;
    assert_eq!(r["result"]["messages"][0]["content"]["text"], "Hello Ada!");
    assert_eq!(r["result"]["messages"][0]["role"], "user");
}

async fn rpc_errors_have_their_codes(db: Db) {
    let db = TestDb::new(db).await;
    let gw = Gateway::start(&db, &[("SLEEP_TOOL_MAX_MS", "100")]).await;
    let echo = gw.tool("echo", None).await;
    gw.tool("sleep", None).await;

    let (status, r) = gw.rpc("no/such", json!({})).await;
    assert_eq!(status, StatusCode::OK, "unknown method is HTTP 200");
    assert_eq!(r["error"]["code"], -32601);
    assert_eq!(r["id"], 1);

    let resp = gw
        .http
        .post(gw.url("/rpc"))
        .bearer_auth(&gw.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let r: Value = resp.json().await.unwrap();
    assert_eq!(
        (r["error"]["code"].clone(), r["id"].clone()),
        (json!(-32700), Value::Null)
    );

    let (status, r) = gw.post("/rpc", json!({"jsonrpc": "2.0", "id": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(r["error"]["code"], -32600);

    // MCP's ids are strings or integers; params are structured (or absent, or null).
    for body in [
        json!({"jsonrpc": "2.0", "id": 1.5, "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": [1], "method": "ping"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": "x"}),
    ] {
        let (status, r) = gw.post("/rpc", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {r}");
        assert_eq!(r["error"]["code"], -32600, "{body}: {r}");
    }
    let (status, r) = gw
        .post(
            "/rpc",
            json!({"jsonrpc": "2.0", "id": 7.0, "method": "ping", "params": null}),
        )
        .await;
    assert_eq!(
        (status, r["id"].clone()),
        (StatusCode::OK, json!(7.0)),
        "an integral float is an integer: {r}"
    );

    for (params, what) in [
        (json!({"name": "missing", "arguments": {}}), "unknown tool"),
        (json!({"arguments": {}}), "no name"),
        (
            json!({"name": "sleep", "arguments": {"ms": 5000}}),
            "sleep over the bound",
        ),
        (
            json!({"name": "sleep", "arguments": {"ms": "x"}}),
            "sleep with a bad delay",
        ),
    ] {
        let (status, r) = gw.rpc("tools/call", params).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(r["error"]["code"], -32602, "{what}: {r}");
    }
    // A tool's route is kept in memory between writes: a toggle shows at once, both ways.
    let call_echo = async || {
        gw.rpc("tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}))
            .await
            .1
    };
    assert_eq!(call_echo().await["result"]["content"][0]["text"], "hi");
    gw.toggle("tools", &echo, false).await;
    let r = call_echo().await;
    assert_eq!(r["error"]["code"], -32602, "a disabled tool is refused: {r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("disabled"));
    gw.toggle("tools", &echo, true).await;
    assert_eq!(call_echo().await["result"]["content"][0]["text"], "hi", "enabled again");
    gw.toggle("tools", &echo, false).await;
    let (_, r) = gw.rpc("tools/list", json!({})).await;
    assert_eq!(r["result"]["tools"].as_array().unwrap().len(), 1, "and not listed");
    let (_, r) = gw
        .rpc("tools/list", json!({"server_id": "0123456789abcdef0123456789abcdef"}))
        .await;
    assert_eq!(r["error"]["code"], -32602);
    let (_, r) = gw.rpc("resources/read", json!({"uri": "nope"})).await;
    assert_eq!(r["error"]["code"], -32602);
    let (_, r) = gw.rpc("prompts/get", json!({"name": "nope"})).await;
    assert_eq!(r["error"]["code"], -32602);

    // A notification gets no answer.
    let resp = gw
        .http
        .post(gw.url("/rpc"))
        .bearer_auth(&gw.token)
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(resp.bytes().await.unwrap().is_empty());

    let resp = gw
        .http
        .post(gw.url("/rpc"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_frames_endpoint_keepalive_and_replies_in_order() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("SSE_KEEPALIVE_INTERVAL", "0.3")]).await;
    gw.tool("echo", None).await;
    let mut sse = SseStream::open(&gw, "/sse").await;
    let headers = sse.response.headers().clone();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-mcp-sse"], "true");

    let endpoint = sse.endpoint().await;
    let host = gw.base.strip_prefix("http://").unwrap();
    let session = endpoint
        .strip_prefix(&format!("http://{host}/message?session_id="))
        .unwrap_or_else(|| panic!("endpoint {endpoint}"));
    assert_eq!(session.len(), 32);

    // Keepalive after each interval of silence.
    let start = Instant::now();
    assert_eq!(
        sse.next_within(Duration::from_secs(5)).await.unwrap(),
        ("comment".into(), "keepalive".into())
    );
    let gap = start.elapsed();
    assert!(
        gap >= Duration::from_millis(250) && gap < Duration::from_millis(1500),
        "keepalive after {gap:?}"
    );

    // Before MCP's handshake a request is refused, as the SDKs refuse it; then it is served.
    let early = json!({"jsonrpc": "2.0", "id": 41, "method": "tools/list"});
    let resp = gw
        .http
        .post(&endpoint)
        .bearer_auth(&gw.token)
        .json(&early)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let refused = sse.next_message().await;
    assert_eq!(refused["id"], 41);
    assert_eq!(refused["error"]["code"], -32602);
    assert_eq!(
        refused["error"]["message"],
        "Received request before initialization was complete"
    );
    sse.initialize(&gw, &endpoint).await;

    // The round trip: 202 on the POST, the reply on the stream.
    let resp = gw
        .http
        .post(&endpoint)
        .bearer_auth(&gw.token)
        .json(&json!({"jsonrpc": "2.0", "id": 42, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "over sse"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"status": "success"}));
    let reply = sse.next_message().await;
    assert_eq!(reply["id"], 42);
    assert_eq!(reply["result"]["content"][0]["text"], "over sse");

    // Errors come back on the stream too.
    gw.http
        .post(&endpoint)
        .bearer_auth(&gw.token)
        .json(&json!({"jsonrpc": "2.0", "id": 43, "method": "no/such"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.next_message().await["error"]["code"], -32601);
    assert_eq!(gw.metric("mcp_sessions_active{transport=\"sse\"}").await, Some(1.0));
    assert_eq!(gw.metric("mcp_sessions_total{transport=\"sse\"}").await, Some(1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sse_path_narrows_tools_and_unknown_sessions_are_404() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[]).await;
    let echo = gw.tool("echo", None).await;
    gw.tool("time", None).await;
    let sid = gw
        .create("servers", json!({"server": {"name": "s", "associated_tools": [echo]}}))
        .await;

    let mut sse = SseStream::open(&gw, &format!("/servers/{sid}/sse")).await;
    let endpoint = sse.endpoint().await;
    assert!(
        endpoint.starts_with(&format!("{}/servers/{sid}/message?session_id=", gw.base)),
        "{endpoint}"
    );
    sse.initialize(&gw, &endpoint).await;
    let resp = gw
        .http
        .post(&endpoint)
        .bearer_auth(&gw.token)
        .json(&json!({"jsonrpc": "2.0", "id": "x", "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let reply = sse.next_message().await;
    assert_eq!(reply["id"], "x");
    let tools = reply["result"]["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "only the server's tools");
    assert_eq!(tools[0]["name"], "echo");

    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let post = |path: String| {
        let req = gw.http.post(gw.url(&path)).bearer_auth(&gw.token).json(&body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, r) = post("/message?session_id=0123456789abcdef0123456789abcdef".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(r["detail"].as_str().unwrap().contains("Session not found"));
    let (status, _) = post("/message".into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "session_id is required");
    let (status, _) = post(format!("/servers/{sid}/message?session_id=nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let resp = gw
        .http
        .get(gw.url("/servers/0123456789abcdef0123456789abcdef/sse"))
        .bearer_auth(&gw.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = gw.http.get(gw.url("/sse")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = gw.http.post(endpoint).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_sessions_with_a_final_frame_and_exits_0() {
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[]).await;
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut sse = SseStream::open(&gw, "/sse").await;
        sse.endpoint().await;
        streams.push(sse);
    }
    let pid = gw.pid();
    let stopping = tokio::spawn(gw.stop());
    for sse in &mut streams {
        let (event, _) = sse.next_within(Duration::from_secs(5)).await.expect("a final frame");
        assert_eq!(event, "shutdown");
        assert!(
            sse.next_within(Duration::from_secs(5)).await.is_none(),
            "then the stream ends"
        );
    }
    assert!(stopping.await.unwrap(), "gateway {pid} exits 0 after SIGTERM");
}
