//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, npm; `scripts/conformance.sh`)
//! as the referee of `stampede upstream --conformance`: its active suite (every server scenario:
//! lifecycle, sessions, DNS-rebinding protection, the fixtures' tools, resources, templates, prompts
//! and completion, and the server messaging the client mid-request — logging, progress, sampling,
//! elicitation, subscriptions) must pass whole, and so must the 2026-07-28 requirements (the stateless
//! era's envelope, headers, caching, input-required flows, and the tasks extension).

use testkit::conformance::{ACTIVE, REQUIRED_2026, referee, suite};
use testkit::spawn_upstream;

#[test]
fn the_upstream_passes_the_official_suite() {
    if suite().is_none() {
        return;
    }
    let up = spawn_upstream(&["--conformance"]);
    let url = format!("{}/mcp", up.url);
    referee(&url, ACTIVE).assert_whole(ACTIVE);
    referee(&url, REQUIRED_2026).assert_whole(REQUIRED_2026);
}
