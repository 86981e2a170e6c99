//! The official MCP conformance suite as the referee of the gateway, with the built-in upstream
//! (`stampede upstream --conformance`) federated; `AUTH_REQUIRED=false` lets the suite, which sends no
//! token, in. Through a virtual server of the federated server's tools (`/servers/{id}/mcp`, which
//! fronts it) and through the relay of the federated server (`/gateways/{id}/mcp`) the suite must find
//! what it finds against the server itself: the active suite and the 2026-07-28 requirements whole.
//! On the gateway's own `/mcp` the scenarios about the protocol itself and the lists are held; the
//! rest call the fixtures by the server's names, which `/mcp` prefixes with the gateway's.

use serde_json::json;
use testkit::conformance::{ACTIVE, REQUIRED_2026, referee, suite};
use testkit::{Db, Gateway, TestDb, spawn_upstream};

/// The active suite's scenarios that pass against the gateway's `/mcp`.
const ON_MCP: [&str; 8] = [
    "server-initialize",
    "server-session-lifecycle",
    "ping",
    "tools-list",
    "server-sse-multiple-streams",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
];

/// The 2026-07-28 requirements' scenarios that pass against the gateway's `/mcp`.
const ON_MCP_2026: [&str; 11] = [
    "tools-list",
    "server-sse-multiple-streams",
    "resources-list",
    "sep-2164-resource-not-found",
    "prompts-list",
    "dns-rebinding-protection",
    "caching",
    "input-required-result-missing-input-response",
    "input-required-result-unsupported-methods",
    "input-required-result-ignore-extra-params",
    "input-required-result-validate-input",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_suite_passes_through_a_virtual_server_and_the_relay_and_the_protocol_scenarios_on_mcp() {
    if suite().is_none() {
        return;
    }
    let up = spawn_upstream(&["--conformance"]);
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::federating(&db, &[("AUTH_REQUIRED", "false")]).await;
    let (status, body) = gw
        .post(
            "/gateways",
            json!({"name": "conformance", "url": format!("{}/mcp", up.url), "transport": "STREAMABLEHTTP"}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let (_, tools) = gw.get("/tools?limit=200").await;
    let federated: Vec<&str> = tools
        .as_array()
        .or_else(|| tools["items"].as_array())
        .unwrap()
        .iter()
        .filter(|t| t["gatewayId"] == id.as_str())
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    let server = gw
        .create(
            "servers",
            json!({"server": {"name": "fixtures", "associated_tools": federated}}),
        )
        .await;

    tokio::task::block_in_place(|| {
        for path in [format!("/servers/{server}/mcp"), format!("/gateways/{id}/mcp")] {
            referee(&gw.url(&path), ACTIVE).assert_whole(ACTIVE);
            referee(&gw.url(&path), REQUIRED_2026).assert_whole(REQUIRED_2026);
        }
        referee(&gw.url("/mcp"), ACTIVE).assert_passed(&ON_MCP);
        referee(&gw.url("/mcp"), REQUIRED_2026).assert_passed(&ON_MCP_2026);
    });
}
