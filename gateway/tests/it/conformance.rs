//! The official MCP conformance suite as the referee of the gateway's own protocol handling, on
//! `/mcp` with the built-in upstream (`stampede upstream --conformance`) federated. `AUTH_REQUIRED=false`
//! lets the suite, which sends no token, in. The scenarios held are those about the protocol itself and
//! the lists; those that call the suite's fixture tools, resources and prompts by their own names, or
//! need the server to message the client mid-request, wait for a relay of the federated upstream
//! (docs/reliability.md).

use serde_json::json;
use testkit::conformance::{referee, suite};
use testkit::{Db, Gateway, TestDb, spawn_upstream};

/// The active suite's scenarios that pass against the gateway.
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

/// The 2026-07-28 requirements' scenarios that pass against the gateway.
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
async fn the_gateway_passes_the_protocol_scenarios_of_the_official_suite() {
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
    let url = gw.url("/mcp");

    let held = |run: &[&str], scenarios: &[&str]| {
        let refereed = referee(&url, run);
        eprintln!(
            "{run:?}: {} of {} scenarios pass; {}",
            refereed.passing(),
            refereed.verdicts.len(),
            refereed.total
        );
        let failed: Vec<_> = scenarios.iter().filter(|s| !refereed.passed(s)).collect();
        assert!(failed.is_empty(), "{failed:?} did not pass:\n{}", refereed.text);
    };
    tokio::task::block_in_place(|| {
        held(&[], &ACTIVE);
        held(&["--requirements", "2026-07-28"], &REQUIRED_2026);
    });
}
