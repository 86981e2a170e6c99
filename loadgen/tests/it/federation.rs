//! The reference gateway federating `stampede upstream` for real, both binaries as processes on real
//! sockets: registering a gateway initializes its upstream and lists its tools (over SSE and over
//! Streamable HTTP), a `tools/call` of a federated tool reaches the upstream (counted there) and its
//! answer comes back, and an upstream that is down or stalls is a 502 or 504 within the timeout.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{Proc, spawn_upstream as upstream};

const SECRET: &str = "federation-test-secret";

/// The reference gateway with real activation (no simulated upstream I/O).
fn gateway(env: &[(&str, &str)]) -> Proc {
    testkit::spawn_gateway(SECRET, env)
}

fn client() -> reqwest::Client {
    let token = stampede_loadgen::target::mint(SECRET).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn register(http: &reqwest::Client, gw: &Proc, name: &str, url: &str, transport: &str) -> (u16, Value) {
    let resp = http
        .post(format!("{}/gateways", gw.url))
        .json(&json!({"name": name, "url": url, "transport": transport}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn call(http: &reqwest::Client, gw: &Proc, tool: &str, arguments: Value) -> Value {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}});
    http.post(format!("{}/rpc", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn upstream_calls(up: &Proc) -> f64 {
    upstream_requests(up, "tools/call", "").await
}

/// The requests of `method` the upstream counted, over `transport` (any, when empty).
async fn upstream_requests(up: &Proc, method: &str, transport: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics/prometheus", up.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("upstream_requests_total{") && l.contains(&format!("method=\"{method}\"")))
        .filter(|l| transport.is_empty() || l.contains(&format!("transport=\"{transport}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_registered_gateway_federates_its_upstream_over_both_transports() {
    let up = upstream(&["--tools", "2"]);
    let gw = gateway(&[]);
    let http = client();
    for (name, path, transport, slug) in [
        ("Up One", "/sse", "SSE", "up-one"),
        ("up two", "/mcp", "STREAMABLEHTTP", "up-two"),
    ] {
        let (status, g) = register(&http, &gw, name, &format!("{}{path}", up.url), transport).await;
        assert_eq!(status, 200, "{g}");
        let id = g["id"].as_str().unwrap();
        let tools: Value = http
            .get(format!("{}/tools?gateway_id={id}", gw.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut names: Vec<&str> = tools
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        let mut want: Vec<String> = [
            "confirm", "echo", "fail", "gen_0001", "gen_0002", "payload", "sleep", "time",
        ]
        .iter()
        .map(|t| format!("{slug}-{t}"))
        .collect();
        want.sort_unstable();
        assert_eq!(
            names, want,
            "{transport}: the upstream's tools, under the gateway's slug"
        );

        let before = upstream_calls(&up).await;
        let answer = call(&http, &gw, &format!("{slug}-echo"), json!({"text": "through"})).await;
        assert_eq!(answer["result"]["content"][0]["text"], "through", "{answer}");
        assert_eq!(
            upstream_calls(&up).await,
            before + 1.0,
            "{transport}: the call reached the upstream"
        );
        let failed = call(&http, &gw, &format!("{slug}-fail"), json!({})).await;
        assert_eq!(
            failed["result"]["isError"], true,
            "a tool error is relayed as it came: {failed}"
        );
    }
    // Over Streamable HTTP the upstream speaks 2026-07-28: one server/discover found it, and nothing
    // was initialized there since.
    let (discovers, inits) = (
        upstream_requests(&up, "server/discover", "streamable_http").await,
        upstream_requests(&up, "initialize", "streamable_http").await,
    );
    assert_eq!((discovers, inits), (1.0, 0.0), "the stateless era, found once and kept");
}

/// A session-era upstream no one here wrote (the official TypeScript server-everything, npm): the
/// gateway's `server/discover` is refused, it starts with `initialize` instead, lists the tools and
/// forwards a call in that era.
#[tokio::test]
async fn a_session_era_upstream_is_federated_by_falling_back_to_initialize() {
    let Some(everything) = testkit::Everything::start() else {
        return;
    };
    let gw = gateway(&[]);
    let http = client();
    let (status, g) = register(&http, &gw, "everything", &everything.url, "STREAMABLEHTTP").await;
    assert_eq!(status, 200, "{g}");
    for _ in 0..2 {
        let answer = call(&http, &gw, "everything-echo", json!({"message": "through"})).await;
        let text = answer["result"]["content"][0]["text"].as_str().unwrap_or_default();
        assert!(text.contains("through"), "{answer}");
    }
}

#[tokio::test]
async fn an_upstream_that_is_down_or_stalls_is_a_502_or_504_in_time() {
    let gw = gateway(&[("GATEWAY_ACTIVATION_TIMEOUT_MS", "500")]);
    let http = client();
    let nothing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/sse", nothing.local_addr().unwrap());
    drop(nothing);
    let (status, body) = register(&http, &gw, "down", &dead, "SSE").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("Failed to initialize gateway"),
        "{body}"
    );

    let stalling = upstream(&["--stall-rate", "1"]);
    let started = Instant::now();
    let (status, body) = register(&http, &gw, "stalls", &format!("{}/mcp", stalling.url), "STREAMABLEHTTP").await;
    assert_eq!(status, 504, "{body}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let listed: Value = http
        .get(format!("{}/gateways", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([]), "a refused registration writes nothing");
}

/// The official SDK's HTTP+SSE server federated: a tool that pings its client (ids from 1, like the
/// gateway's own requests) is answered through the gateway — the gateway answers the pings and takes
/// only a message without a method for its answer.
#[tokio::test]
async fn a_federated_sdk_tool_that_pings_its_client_is_answered() {
    let Some(python) = testkit::McpSdk::python() else {
        return;
    };
    let server = testkit::McpSdk::server(&python, "sse");
    let gw = gateway(&[]);
    let http = client();
    let (status, g) = register(&http, &gw, "sdk", &server.url, "SSE").await;
    assert_eq!(status, 200, "{g}");
    let answer = call(&http, &gw, "sdk-pinging", json!({"text": "through"})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "through", "{answer}");
    let answer = call(&http, &gw, "sdk-logged", json!({"text": "logged"})).await;
    assert_eq!(answer["result"]["content"][0]["text"], "logged", "{answer}");
}
