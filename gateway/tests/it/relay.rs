//! `/gateways/{id}/mcp`, the relay of a federated MCP server: it sends MCP's own headers on and never
//! the client's token or Origin; a disabled gateway is not relayed to, nor one of the HTTP+SSE
//! transport. (That it relays MCP faithfully, streams and mid-request messages included, the official
//! suite says: `conformance.rs`.)

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;

use testkit::{Db, Gateway, TestDb, spawn_upstream};

/// An MCP server of the session era that answers `ping` with the head of the request it received.
async fn echo_heads(mut sock: tokio::net::TcpStream) {
    let mut buf = Vec::new();
    while let Some((head, body)) = testkit::read_request(&mut sock, &mut buf).await {
        let msg: Value = serde_json::from_str(&body).unwrap_or_default();
        let result = match msg["method"].as_str() {
            Some("initialize") => {
                json!({"protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {"name": "heads", "version": "0"}})
            }
            Some("tools/list") => json!({"tools": []}),
            _ => json!({"head": head}),
        };
        let reply = match msg.get("id") {
            Some(id) if msg["method"] != "server/discover" => {
                json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
            }
            Some(id) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "no"}}).to_string(),
            None => String::new(),
        };
        let status = if reply.is_empty() { "202 Accepted" } else { "200 OK" };
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nmcp-session-id: s-1\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if sock.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn the_relay_sends_mcp_headers_on_and_never_the_token_and_obeys_the_gateway_switch() {
    let heads = testkit::tcp_server(echo_heads).await;
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[]).await;
    let (status, registered) = gw
        .post(
            "/gateways",
            json!({"name": "heads", "url": format!("{heads}/mcp"), "transport": "STREAMABLEHTTP"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let id = registered["id"].as_str().unwrap().to_owned();
    let relay = gw.url(&format!("/gateways/{id}/mcp"));
    let ping = || {
        gw.http
            .post(&relay)
            .bearer_auth(&gw.token)
            .header("origin", "http://localhost")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", "s-1")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}))
    };

    let resp = ping().send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["mcp-session-id"],
        "s-1",
        "the server's session is the client's"
    );
    let body: Value = resp.json().await.unwrap();
    let head = body["result"]["head"].as_str().unwrap();
    assert!(
        head.contains("mcp-session-id: s-1") && head.contains("mcp-protocol-version: 2025-06-18"),
        "{head}"
    );
    assert!(!head.contains("authorization") && !head.contains("origin"), "{head}");

    // Without a token, the gateway's check answers first.
    let resp = gw.http.post(&relay).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let (status, _) = gw.toggle("gateways", &id, false).await;
    assert_eq!(status, StatusCode::OK);
    let resp = ping().send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: Value = resp.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("disabled"), "{body}");

    let up = spawn_upstream(&[]);
    let (status, sse) = gw
        .post(
            "/gateways",
            json!({"name": "sse", "url": format!("{}/sse", up.url), "transport": "SSE"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sse}");
    let resp = gw
        .http
        .post(gw.url(&format!("/gateways/{}/mcp", sse["id"].as_str().unwrap())))
        .bearer_auth(&gw.token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_IMPLEMENTED);
}

/// One MCP request of the session era to `url`; the answer, from JSON or from an event stream.
async fn mcp(
    gw: &Gateway,
    url: &str,
    session: Option<&str>,
    id: u64,
    method: &str,
    params: Value,
) -> (Option<String>, Value) {
    let mut request = gw
        .http
        .post(url)
        .bearer_auth(&gw.token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let resp = request.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{method}");
    let session = resp
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().await.unwrap();
    let message = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .rfind(|d| !d.trim().is_empty())
        .unwrap_or(&text);
    (session, serde_json::from_str(message.trim()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_virtual_server_of_one_federated_server_fronts_it_narrowed_to_its_tools() {
    let up = spawn_upstream(&["--conformance"]);
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::federating(&db, &[]).await;
    let (status, registered) = gw
        .post(
            "/gateways",
            json!({"name": "fixtures", "url": format!("{}/mcp", up.url), "transport": "STREAMABLEHTTP"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{registered}");
    let (_, tools) = gw.get("/tools?limit=200").await;
    let tools = tools.as_array().or_else(|| tools["items"].as_array()).unwrap().clone();
    let id_of = |original: &str| {
        tools
            .iter()
            .find(|t| t["originalName"] == original)
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{original} is not federated"))
    };
    let chosen = [id_of("test_simple_text"), id_of("test_image_content")];
    let front = gw
        .create(
            "servers",
            json!({"server": {"name": "front", "associated_tools": chosen}}),
        )
        .await;
    let own = gw.tool("own", None).await;
    let mixed = gw
        .create(
            "servers",
            json!({"server": {"name": "mixed", "associated_tools": [chosen[0].clone(), own]}}),
        )
        .await;

    let url = gw.url(&format!("/servers/{front}/mcp"));
    let init =
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}});
    let (session, answer) = mcp(&gw, &url, None, 1, "initialize", init.clone()).await;
    assert_eq!(answer["result"]["serverInfo"]["name"], "stampede-upstream", "{answer}");
    let session = session.expect("the federated server's session");
    let (_, listed) = mcp(&gw, &url, Some(&session), 2, "tools/list", json!({})).await;
    let mut names: Vec<_> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["test_image_content", "test_simple_text"], "{listed}");
    let (_, called) = mcp(
        &gw,
        &url,
        Some(&session),
        3,
        "tools/call",
        json!({"name": "test_simple_text"}),
    )
    .await;
    assert_eq!(called["result"]["content"][0]["type"], "text", "{called}");
    let (_, refused) = mcp(
        &gw,
        &url,
        Some(&session),
        4,
        "tools/call",
        json!({"name": "test_error_handling"}),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    // The gateway's token check comes first, as on every MCP endpoint.
    let resp = gw.http.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    // A server whose tools are not all one federated server's is the gateway's own, as before.
    let url = gw.url(&format!("/servers/{mixed}/mcp"));
    let (session, answer) = mcp(&gw, &url, None, 1, "initialize", init).await;
    assert_eq!(answer["result"]["serverInfo"]["name"], "stampede-gateway", "{answer}");
    let (_, listed) = mcp(&gw, &url, session.as_deref(), 2, "tools/list", json!({})).await;
    assert!(listed.to_string().contains("fixtures-test_simple_text"), "{listed}");
}
