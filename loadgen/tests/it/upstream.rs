//! `stampede upstream`, the built-in upstream MCP server, as a gateway meets it: the real binary on a
//! real socket, spoken to over both MCP transports with plain HTTP, its knobs and its metrics.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::spawn_upstream as start;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

/// The events of an SSE body as (event, data), read as they arrive.
struct Events {
    body: reqwest::Response,
    buffer: String,
}

impl Events {
    fn new(body: reqwest::Response) -> Events {
        Events {
            body,
            buffer: String::new(),
        }
    }

    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = "message".to_owned();
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = e.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push(d.trim_start().to_owned());
                    }
                }
                if !data.is_empty() {
                    return (event, data.join("\n"));
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.chunk())
                .await
                .expect("an event within 10 s")
                .unwrap()
                .expect("the stream goes on");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// A legacy-transport session: the stream and where to post.
async fn legacy_session(http: &reqwest::Client, base: &str) -> (Events, String) {
    let resp = http.get(format!("{base}/sse")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.contains("text/event-stream"), "{content_type}");
    let mut events = Events::new(resp);
    let (event, endpoint) = events.next().await;
    assert_eq!(event, "endpoint");
    assert!(endpoint.starts_with("/message?session_id="), "{endpoint}");
    (events, format!("{base}{endpoint}"))
}

async fn legacy_call(http: &reqwest::Client, events: &mut Events, post: &str, msg: Value) -> Value {
    let resp = http.post(post).json(&msg).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let (event, data) = events.next().await;
    assert_eq!(event, "message");
    let answer: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(answer["id"], msg["id"]);
    answer
}

#[tokio::test]
async fn legacy_sse_transport_initializes_lists_and_calls() {
    let up = start(&["--tools", "3"]);
    let http = client();
    let (mut events, post) = legacy_session(&http, &up.url).await;
    // Before MCP's handshake a request is refused, as the SDKs refuse it.
    let early = legacy_call(&http, &mut events, &post, request(0, "tools/list", json!({}))).await;
    assert_eq!(early["error"]["code"], -32602, "{early}");
    assert_eq!(
        early["error"]["message"],
        "Received request before initialization was complete"
    );
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let answer = legacy_call(&http, &mut events, &post, init).await;
    assert_eq!(answer["result"]["protocolVersion"], "2024-11-05");
    assert!(answer["result"]["capabilities"]["tools"].is_object());
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(http.post(&post).json(&note).send().await.unwrap().status(), 202);

    let tools = legacy_call(&http, &mut events, &post, request(2, "tools/list", json!({}))).await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "echo", "time", "sleep", "payload", "fail", "confirm", "gen_0001", "gen_0002", "gen_0003"
        ]
    );
    let echo = request(3, "tools/call", json!({"name": "echo", "arguments": {"text": "hi"}}));
    let answer = legacy_call(&http, &mut events, &post, echo).await;
    assert_eq!(answer["result"]["content"][0]["text"], "hi");
    assert_eq!(answer["result"]["isError"], false);
    let fail = request(4, "tools/call", json!({"name": "fail", "arguments": {}}));
    let answer = legacy_call(&http, &mut events, &post, fail).await;
    assert_eq!(
        answer["result"]["isError"], true,
        "a tool error is a result, not a JSON-RPC error"
    );
    let unknown = request(5, "tools/call", json!({"name": "nope", "arguments": {}}));
    let answer = legacy_call(&http, &mut events, &post, unknown).await;
    assert_eq!(answer["error"]["code"], -32602);
    let payload = request(
        6,
        "tools/call",
        json!({"name": "payload", "arguments": {"bytes": 5000}}),
    );
    let answer = legacy_call(&http, &mut events, &post, payload).await;
    assert_eq!(answer["result"]["content"][0]["text"].as_str().unwrap().len(), 5000);

    let stale = http
        .post(format!("{}/message?session_id=0000", up.url))
        .json(&request(7, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 404, "an unknown session");

    // A client that leaves ends its session: no longer listed, no longer counted.
    let open = "upstream_sessions_active{transport=\"sse\"}";
    assert_eq!(metric(&http, &up.url, open).await, 1.0);
    drop(events);
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric(&http, &up.url, open).await != 0.0 {
        assert!(Instant::now() < deadline, "the session outlived its client");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gone = http
        .post(&post)
        .json(&request(8, "ping", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn streamable_http_sessions_follow_the_specification() {
    let up = start(&[]);
    let http = client();
    let mcp = format!("{}/mcp", up.url);
    let both = "application/json, text/event-stream";
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    );
    let resp = http.post(&mcp).header("accept", both).json(&init).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let session = resp.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["result"]["protocolVersion"], "2025-06-18");

    // An older client gets its own version; an unknown one gets the newest.
    let old = request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-03-26", "capabilities": {}}),
    );
    let answer: Value = http.post(&mcp).json(&old).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["result"]["protocolVersion"], "2025-03-26");
    let odd = request(
        1,
        "initialize",
        json!({"protocolVersion": "1999-01-01", "capabilities": {}}),
    );
    let answer: Value = http.post(&mcp).json(&odd).send().await.unwrap().json().await.unwrap();
    assert_eq!(answer["result"]["protocolVersion"], "2025-11-25");

    let with = |b: reqwest::RequestBuilder| {
        b.header("accept", both)
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-06-18")
    };
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(with(http.post(&mcp)).json(&note).send().await.unwrap().status(), 202);
    let list: Value = with(http.post(&mcp))
        .json(&request(2, "tools/list", json!({})))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 6);

    // Only a stream accepted: the answer comes SSE-framed.
    let resp = http
        .post(&mcp)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .json(&request(
            3,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "framed"}}),
        ))
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("text/event-stream")
    );
    let (_, data) = Events::new(resp).next().await;
    let answer: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(answer["result"]["content"][0]["text"], "framed");

    let ping = request(4, "ping", json!({}));
    let no_session = http.post(&mcp).header("accept", both).json(&ping).send().await.unwrap();
    assert_eq!(no_session.status(), 400, "a request without Mcp-Session-Id");
    let unknown = http
        .post(&mcp)
        .header("accept", both)
        .header("mcp-session-id", "feed")
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404, "an unknown session");
    let bad_version = http
        .post(&mcp)
        .header("accept", both)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "1999-01-01")
        .json(&ping)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_version.status(), 400, "an unsupported MCP-Protocol-Version");
    let garbage = with(http.post(&mcp)).body("{not json").send().await.unwrap();
    assert_eq!(garbage.status(), 400);
    let err: Value = garbage.json().await.unwrap();
    assert_eq!(err["error"]["code"], -32700);

    // The session's own stream opens; DELETE ends the session.
    let stream = with(http.get(&mcp)).send().await.unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("text/event-stream")
    );
    drop(stream);
    assert_eq!(with(http.delete(&mcp)).send().await.unwrap().status(), 200);
    let after = with(http.post(&mcp)).json(&ping).send().await.unwrap();
    assert_eq!(after.status(), 404, "a deleted session is gone");
}

/// The stateless era beside the sessions: `server/discover`, decorated results, the envelope checked,
/// a listen stream acknowledged; and the official SDK's client reaches it in that era.
#[tokio::test]
async fn the_stateless_era_is_served_beside_sessions() {
    let up = start(&[]);
    let http = client();
    let mcp = format!("{}/mcp", up.url);
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let post = |method: &str, name: Option<&str>, params: Value| {
        let mut b = http
            .post(&mcp)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method)
            .json(&request(9, method, params));
        if let Some(n) = name {
            b = b.header("mcp-name", n);
        }
        b.send()
    };
    let d: Value = post("server/discover", None, json!({"_meta": meta}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        d["result"]["supportedVersions"]
            .as_array()
            .unwrap()
            .contains(&json!("2026-07-28")),
        "{d}"
    );
    assert_eq!(
        (d["result"]["cacheScope"].as_str(), d["result"]["resultType"].as_str()),
        (Some("public"), Some("complete"))
    );
    let call = json!({"name": "echo", "arguments": {"text": "hi"}, "_meta": meta});
    let resp = post("tools/call", Some("echo"), call.clone()).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!resp.headers().contains_key("mcp-session-id"), "no session");
    let c: Value = resp.json().await.unwrap();
    assert_eq!(c["result"]["content"][0]["text"], "hi", "{c}");
    let wrong = post("tools/call", Some("time"), call).await.unwrap();
    assert_eq!(wrong.status(), 400, "Mcp-Name disagrees with the body");
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"]["code"], -32020);
    let init = post("initialize", None, json!({"_meta": meta})).await.unwrap();
    assert_eq!(init.status(), 404, "no initialize in this era");

    let listen = json!({"_meta": meta, "notifications": {"toolsListChanged": true}});
    let mut stream = post("subscriptions/listen", None, listen).await.unwrap();
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&first);
    assert!(first.contains("notifications/subscriptions/acknowledged"), "{first}");
    assert!(
        first.contains(r#""io.modelcontextprotocol/subscriptionId":9"#),
        "{first}"
    );

    if let Some(python) = testkit::McpSdk::python() {
        let report = testkit::McpSdk::client(&python, &mcp, "", "auto", "echo").await;
        assert_eq!(report["protocol_version"], "2026-07-28", "{report}");
        assert_eq!(report["server_name"], "stampede-upstream", "{report}");
        assert_eq!(report["call_text"], "sdk", "{report}");
        for url in [mcp.clone(), format!("{}/sse", up.url)] {
            let report = testkit::McpSdk::client(&python, &url, "", "legacy", "echo").await;
            assert_eq!(report["protocol_version"], "2025-11-25", "{url}: {report}");
            assert_eq!(report["call_text"], "sdk", "{url}: {report}");
        }
    }
}

/// MRTR: `confirm` answers `input_required` with an elicitation and a `requestState`; the retry that
/// echoes the state with the answer completes, a forged state is refused, and a client that does not
/// declare elicitation is told which capability it lacks.
#[tokio::test]
async fn an_input_request_is_answered_on_the_retry() {
    let up = start(&[]);
    let http = client();
    let mcp = format!("{}/mcp", up.url);
    let meta = |caps: Value| {
        json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
               "io.modelcontextprotocol/clientCapabilities": caps})
    };
    let call = |id: u64, params: Value| {
        http.post(&mcp)
            .header("accept", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "confirm")
            .json(&request(id, "tools/call", params))
            .send()
    };
    let elicits = json!({"elicitation": {"form": {}}});
    let args = json!({"what": "drop the table"});
    let first = call(
        1,
        json!({"name": "confirm", "arguments": args, "_meta": meta(elicits.clone())}),
    )
    .await
    .unwrap();
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let r = &first["result"];
    assert_eq!(r["resultType"], "input_required", "{first}");
    assert_eq!(r["inputRequests"]["confirm"]["method"], "elicitation/create", "{first}");
    assert!(r.get("ttlMs").is_none(), "no caching hint on a result asking for input");
    let state = r["requestState"].as_str().unwrap().to_owned();

    let answer = json!({"confirm": {"action": "accept", "content": {"ok": true}}});
    let retry = json!({"name": "confirm", "arguments": args, "_meta": meta(elicits.clone()),
                       "inputResponses": answer, "requestState": state});
    let done: Value = call(2, retry).await.unwrap().json().await.unwrap();
    assert_eq!(done["id"], 2);
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_eq!(done["result"]["content"][0]["text"], "confirmed", "{done}");

    let forged = json!({"name": "confirm", "arguments": {"what": "something else"}, "_meta": meta(elicits),
                        "inputResponses": answer, "requestState": state});
    let refused = call(3, forged).await.unwrap();
    assert_eq!(refused.status(), 400, "a state issued for other arguments");
    assert_eq!(refused.json::<Value>().await.unwrap()["error"]["code"], -32602);

    let cannot = call(
        4,
        json!({"name": "confirm", "arguments": args, "_meta": meta(json!({}))}),
    )
    .await
    .unwrap();
    assert_eq!(cannot.status(), 400);
    assert_eq!(cannot.json::<Value>().await.unwrap()["error"]["code"], -32021);
}

/// A session with the upstream over Streamable HTTP; answers the session id.
async fn streamable_session(http: &reqwest::Client, mcp: &str) -> String {
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
    );
    let resp = http.post(mcp).json(&init).send().await.unwrap();
    resp.headers()["mcp-session-id"].to_str().unwrap().to_owned()
}

/// A figure of the upstream's `/metrics/prometheus` (0 when the series is absent, as Prometheus reads
/// a counter never incremented), or `None` when the metric is not there at all.
async fn metric_opt(http: &reqwest::Client, base: &str, line_start: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics/prometheus"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().unwrap())
}

async fn metric(http: &reqwest::Client, base: &str, line_start: &str) -> f64 {
    metric_opt(http, base, line_start).await.unwrap_or(0.0)
}

#[tokio::test]
async fn knobs_delay_fail_and_stall_and_each_is_counted() {
    let http = client();
    let call = request(2, "tools/call", json!({"name": "echo", "arguments": {"text": "x"}}));

    let slow = start(&["--latency", "300ms", "--initialize-latency", "0s"]);
    let mcp = format!("{}/mcp", slow.url);
    let started = Instant::now();
    let session = streamable_session(&http, &mcp).await;
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "initialize has its own latency"
    );
    let started = Instant::now();
    let answer: Value = http
        .post(&mcp)
        .header("mcp-session-id", &session)
        .json(&call)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(answer["result"]["content"][0]["text"], "x");
    let calls = metric(
        &http,
        &slow.url,
        "upstream_requests_total{transport=\"streamable_http\",method=\"tools/call\"}",
    )
    .await;
    assert_eq!(calls, 1.0);
    let cpu = metric_opt(&http, &slow.url, "process_cpu_seconds_total ").await;
    assert!(cpu.is_some_and(|c| c >= 0.0), "its own CPU, measured apart: {cpu:?}");

    let failing = start(&["--error-rate", "1"]);
    let mcp = format!("{}/mcp", failing.url);
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}}),
    );
    let resp = http.post(&mcp).json(&init).send().await.unwrap();
    assert!(
        resp.headers().get("mcp-session-id").is_none(),
        "a failed initialize starts no session"
    );
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["error"]["code"], -32603);
    let (mut events, post) = legacy_session(&http, &failing.url).await;
    // The handshake is made (its initialize fails too), so the calls reach the knob.
    let init = request(
        1,
        "initialize",
        json!({"protocolVersion": "2024-11-05", "capabilities": {}}),
    );
    assert_eq!(
        legacy_call(&http, &mut events, &post, init).await["error"]["code"],
        -32603
    );
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(http.post(&post).json(&note).send().await.unwrap().status(), 202);
    for id in 2..5 {
        let mut call = call.clone();
        call["id"] = json!(id);
        let answer = legacy_call(&http, &mut events, &post, call).await;
        assert_eq!(answer["error"]["code"], -32603);
    }
    let rest = http
        .post(format!("{}/rest/echo", failing.url))
        .json(&json!({"a": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 500);
    // Two initializes, three calls, one REST request.
    assert_eq!(metric(&http, &failing.url, "upstream_injected_errors_total").await, 6.0);

    let stalling = start(&["--stall-rate", "1"]);
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let err = quick
        .post(format!("{}/rest/echo", stalling.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(metric(&http, &stalling.url, "upstream_stalls_total").await, 1.0);
}

#[tokio::test]
async fn rest_endpoints_answer_for_rest_tools() {
    let up = start(&[]);
    let http = client();
    let echo: Value = http
        .post(format!("{}/rest/echo", up.url))
        .json(&json!({"q": "hello"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echo, json!({"echo": {"q": "hello"}}));
    let time: Value = http
        .get(format!("{}/rest/time", up.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(time["time"].as_str().unwrap().starts_with("20"), "{time}");
}

#[test]
fn a_port_already_taken_is_a_clear_error_and_exit_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["upstream", "--bind", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot listen on") && stderr.contains(&addr),
        "{stderr}"
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["upstream", "--error-rate", "2"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("between 0 and 1"));
}
