//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, npm; `scripts/conformance.sh`)
//! as the referee of `stampede upstream --conformance`: its active suite (every server scenario:
//! lifecycle, sessions, DNS-rebinding protection, the fixtures' tools, resources, templates, prompts
//! and completion, and the server messaging the client mid-request — logging, progress, sampling,
//! elicitation, subscriptions) must pass whole; of the 2026-07-28 requirements, the scenarios this
//! server serves so far must pass (`REQUIRED_2026`; the rest — tasks, most input-required flows — are
//! still to be built).

use std::process::Command;

use testkit::spawn_upstream;

/// The 2026-07-28 requirements' scenarios that pass against the upstream.
const REQUIRED_2026: [&str; 26] = [
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-error",
    "server-sse-multiple-streams",
    "resources-list",
    "resources-read-text",
    "resources-read-binary",
    "resources-templates-read",
    "sep-2164-resource-not-found",
    "prompts-list",
    "prompts-get-simple",
    "prompts-get-with-args",
    "prompts-get-embedded-resource",
    "prompts-get-with-image",
    "dns-rebinding-protection",
    "caching",
    "http-header-validation",
    "input-required-result-missing-input-response",
    "input-required-result-unsupported-methods",
    "input-required-result-ignore-extra-params",
    "input-required-result-validate-input",
];

/// One scenario's line of the harness's summary: `✓ name: 3 passed, 0 failed` (or `✗`).
struct Verdict {
    scenario: String,
    passed: bool,
}

/// Run the harness against `url` with `args`; its summary lines, and everything it printed.
fn referee(url: &str, args: &[&str]) -> (Vec<Verdict>, String) {
    let out = suite()
        .expect("the suite is installed")
        .args(["server", "--url", url, "--timeout", "20000"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let verdicts = text
        .lines()
        .filter_map(|l| {
            let (passed, rest) = match l.split_once(' ')? {
                ("✓", rest) => (true, rest),
                ("✗", rest) => (false, rest),
                _ => return None,
            };
            let (scenario, _) = rest.split_once(": ")?;
            Some(Verdict {
                scenario: scenario.to_owned(),
                passed,
            })
        })
        .collect();
    (verdicts, text)
}

/// The suite when it can be had; `None` lets the test skip (`STAMPEDE_REQUIRE_MCP_SDK` makes that a
/// failure, as for the SDKs).
fn suite() -> Option<Command> {
    let script = testkit::root().join("scripts/conformance.sh");
    let ready = Command::new(&script).arg("--version").output().unwrap();
    if !ready.status.success() {
        assert!(
            std::env::var_os("STAMPEDE_REQUIRE_MCP_SDK").is_none(),
            "STAMPEDE_REQUIRE_MCP_SDK is set and the conformance suite could not be installed: {}",
            String::from_utf8_lossy(&ready.stderr)
        );
        return None;
    }
    Some(Command::new(script))
}

#[test]
fn the_upstream_passes_the_official_suite() {
    if suite().is_none() {
        return;
    }
    let up = spawn_upstream(&["--conformance"]);
    let url = format!("{}/mcp", up.url);

    let (active, text) = referee(&url, &[]);
    let total = text.lines().find(|l| l.starts_with("Total: ")).unwrap_or("no total");
    eprintln!("active suite: {} scenarios; {total}", active.len());
    assert!(active.len() >= 31, "the active suite ran whole:\n{text}");
    assert!(
        active.iter().all(|v| v.passed) && total.ends_with(" 0 failed"),
        "{text}"
    );

    let (required, text) = referee(&url, &["--requirements", "2026-07-28"]);
    let passing = required.iter().filter(|v| v.passed).count();
    eprintln!(
        "2026-07-28 requirements: {passing} of {} scenarios pass",
        required.len()
    );
    let failed: Vec<_> = REQUIRED_2026
        .iter()
        .filter(|s| !required.iter().any(|v| v.scenario == **s && v.passed))
        .collect();
    assert!(failed.is_empty(), "{failed:?} did not pass:\n{text}");
}
