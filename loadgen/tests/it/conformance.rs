//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, npm; `scripts/conformance.sh`)
//! as the referee of `stampede upstream`'s protocol handling, in both eras: the scenarios about the
//! protocol itself (lifecycle, sessions, the 2026-07-28 headers and envelope, caching hints, input
//! requests, DNS-rebinding protection) and those that call the suite's fixtures (`--conformance`:
//! content types, resources, templates, prompts, completion) must pass. Those that need the server
//! to message the client mid-request (logging, progress, sampling, elicitation, subscriptions) are
//! not run yet.

use std::process::Command;

use testkit::spawn_upstream;

/// The scenarios run, each with the version it is run at: the protocol's own, then the ones that
/// call the suite's fixtures (`stampede upstream --conformance`).
const SCENARIOS: [(&str, &str); 29] = [
    ("server-initialize", "2025-11-25"),
    ("server-session-lifecycle", "2025-11-25"),
    ("ping", "2025-11-25"),
    ("tools-list", "2026-07-28"),
    ("resources-list", "2026-07-28"),
    ("prompts-list", "2026-07-28"),
    ("server-sse-multiple-streams", "2026-07-28"),
    ("dns-rebinding-protection", "2026-07-28"),
    ("http-header-validation", "2026-07-28"),
    ("caching", "2026-07-28"),
    ("sep-2164-resource-not-found", "2026-07-28"),
    ("input-required-result-missing-input-response", "2026-07-28"),
    ("input-required-result-unsupported-methods", "2026-07-28"),
    ("input-required-result-ignore-extra-params", "2026-07-28"),
    ("input-required-result-validate-input", "2026-07-28"),
    ("tools-call-simple-text", "2026-07-28"),
    ("tools-call-image", "2026-07-28"),
    ("tools-call-audio", "2026-07-28"),
    ("tools-call-embedded-resource", "2026-07-28"),
    ("tools-call-mixed-content", "2026-07-28"),
    ("tools-call-error", "2026-07-28"),
    ("resources-read-text", "2026-07-28"),
    ("resources-read-binary", "2026-07-28"),
    ("resources-templates-read", "2026-07-28"),
    ("prompts-get-simple", "2026-07-28"),
    ("prompts-get-with-args", "2026-07-28"),
    ("prompts-get-embedded-resource", "2026-07-28"),
    ("prompts-get-with-image", "2025-11-25"),
    ("completion-complete", "2025-11-25"),
];

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
fn the_upstream_passes_the_protocol_scenarios_of_the_official_suite() {
    if suite().is_none() {
        return;
    }
    let up = spawn_upstream(&["--conformance"]);
    let url = format!("{}/mcp", up.url);
    let mut failed = Vec::new();
    for (scenario, version) in SCENARIOS {
        let out = suite()
            .unwrap()
            .args([
                "server",
                "--url",
                &url,
                "--scenario",
                scenario,
                "--spec-version",
                version,
            ])
            .args(["--timeout", "20000"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        // "Passed: 8/8, 0 failed, 0 warnings"
        let summary = text.lines().find(|l| l.starts_with("Passed: ")).unwrap_or("no result");
        eprintln!("{scenario} at {version}: {summary}");
        if !out.status.success() || !summary.contains(", 0 failed") {
            failed.push(format!("{scenario}: {summary}\n{text}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}
