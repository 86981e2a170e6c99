//! The official MCP conformance suite as the referee of the gateway, with the built-in upstream
//! (`stampede upstream --conformance`) federated; `AUTH_REQUIRED=false` lets the suite, which sends no
//! token, in. Through the relay of the federated server (`/gateways/{id}/mcp`) the suite must find what
//! it finds against the server itself: the active suite whole, and the 2026-07-28 scenarios the server
//! passes. On the gateway's own `/mcp` the scenarios about the protocol itself and the lists are held;
//! the rest call the fixtures by the server's names, which `/mcp` prefixes with the gateway's.

use serde_json::json;
use testkit::conformance::{UPSTREAM_2026, referee, suite};
use testkit::{Db, Gateway, TestDb, spawn_upstream};

/// The active suite's scenarios that pass against the gateway's `/mcp`.
const ACTIVE: [&str; 8] = [
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
const REQUIRED_2026: [&str; 11] = [
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
async fn the_official_suite_passes_through_the_relay_and_the_protocol_scenarios_on_mcp() {
    if suite().is_none() {
        return;
    }
    let up = spawn_upstream(&["--conformance"]);
    let db = TestDb::new(Db::Sqlite).await;
    let gw = Gateway::start(&db, &[("AUTH_REQUIRED", "false")]).await;
    let (status, body) = gw
        .post(
            "/gateways",
            json!({"name": "conformance", "url": format!("{}/mcp", up.url), "transport": "STREAMABLEHTTP"}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let id = body["id"].as_str().unwrap().to_owned();

    let held = |path: &str, run: &[&str], scenarios: &[&str]| {
        let refereed = referee(&gw.url(path), run);
        eprintln!(
            "{path} {run:?}: {} of {} scenarios pass; {}",
            refereed.passing(),
            refereed.verdicts.len(),
            refereed.total
        );
        let failed: Vec<_> = scenarios.iter().filter(|s| !refereed.passed(s)).collect();
        assert!(failed.is_empty(), "{failed:?} did not pass:\n{}", refereed.text);
        refereed
    };
    tokio::task::block_in_place(|| {
        let relay = format!("/gateways/{id}/mcp");
        let whole = held(&relay, &[], &[]);
        assert!(
            whole.verdicts.len() >= 31 && whole.passing() == whole.verdicts.len(),
            "{}",
            whole.text
        );
        held(&relay, &["--requirements", "2026-07-28"], &UPSTREAM_2026);
        held("/mcp", &[], &ACTIVE);
        held("/mcp", &["--requirements", "2026-07-28"], &REQUIRED_2026);
    });
}
