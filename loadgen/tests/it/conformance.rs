//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, npm; `scripts/conformance.sh`)
//! as the referee of `stampede upstream --conformance`: its active suite (every server scenario:
//! lifecycle, sessions, DNS-rebinding protection, the fixtures' tools, resources, templates, prompts
//! and completion, and the server messaging the client mid-request — logging, progress, sampling,
//! elicitation, subscriptions) must pass whole; of the 2026-07-28 requirements, the scenarios this
//! server serves so far must pass (`testkit::conformance::UPSTREAM_2026`; the rest, the tasks
//! extension, is still to be built).

use testkit::conformance::{UPSTREAM_2026, referee, suite};
use testkit::spawn_upstream;

#[test]
fn the_upstream_passes_the_official_suite() {
    if suite().is_none() {
        return;
    }
    let up = spawn_upstream(&["--conformance"]);
    let url = format!("{}/mcp", up.url);

    let active = referee(&url, &[]);
    eprintln!("active suite: {} scenarios; {}", active.verdicts.len(), active.total);
    assert!(
        active.verdicts.len() >= 31,
        "the active suite ran whole:\n{}",
        active.text
    );
    assert!(
        active.passing() == active.verdicts.len() && active.total.ends_with(" 0 failed"),
        "{}",
        active.text
    );

    let required = referee(&url, &["--requirements", "2026-07-28"]);
    eprintln!(
        "2026-07-28 requirements: {} of {} scenarios pass; {}",
        required.passing(),
        required.verdicts.len(),
        required.total
    );
    let failed: Vec<_> = UPSTREAM_2026.iter().filter(|s| !required.passed(s)).collect();
    assert!(failed.is_empty(), "{failed:?} did not pass:\n{}", required.text);
}
