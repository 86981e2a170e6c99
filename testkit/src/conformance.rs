//! The official MCP conformance suite (`@modelcontextprotocol/conformance` from npm, through
//! `scripts/conformance.sh`) as a referee: run against a server's URL, its verdict per scenario.

use std::process::Command;

/// The 2026-07-28 requirements' scenarios that `stampede upstream --conformance` passes (and the
/// gateway's relay of it): the rest, the tasks extension, is still to be built.
pub const UPSTREAM_2026: [&str; 40] = [
    "server-stateless",
    "completion-complete",
    "tools-list",
    "tools-call-simple-text",
    "tools-call-image",
    "tools-call-audio",
    "tools-call-embedded-resource",
    "tools-call-mixed-content",
    "tools-call-error",
    "tools-call-with-progress",
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
    "input-required-result-basic-elicitation",
    "input-required-result-basic-sampling",
    "input-required-result-basic-list-roots",
    "input-required-result-request-state",
    "input-required-result-multiple-input-requests",
    "input-required-result-multi-round",
    "input-required-result-missing-input-response",
    "input-required-result-non-tool-request",
    "input-required-result-result-type",
    "input-required-result-unsupported-methods",
    "input-required-result-tampered-state",
    "input-required-result-capability-check",
    "input-required-result-ignore-extra-params",
    "input-required-result-validate-input",
    "json-schema-2020-12",
    "http-header-validation",
    "http-custom-header-server-validation",
];

/// One scenario's line of the harness's summary: `✓ name: 3 passed, 0 failed` (or `✗`).
pub struct Verdict {
    pub scenario: String,
    pub passed: bool,
}

/// What the harness said of one run.
pub struct Refereed {
    pub verdicts: Vec<Verdict>,
    /// `Total: 72 passed, 0 failed`.
    pub total: String,
    /// Everything it printed, for a failing test to show.
    pub text: String,
}

impl Refereed {
    pub fn passed(&self, scenario: &str) -> bool {
        self.verdicts.iter().any(|v| v.scenario == scenario && v.passed)
    }

    pub fn passing(&self) -> usize {
        self.verdicts.iter().filter(|v| v.passed).count()
    }
}

/// The suite when it can be had; `None` lets a test skip (`STAMPEDE_REQUIRE_MCP_SDK` makes that a
/// failure, as for the SDKs).
pub fn suite() -> Option<Command> {
    let script = crate::root().join("scripts/conformance.sh");
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

/// Run the suite's server scenarios against `url` with `args` (none: the active suite).
pub fn referee(url: &str, args: &[&str]) -> Refereed {
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
    let total = text
        .lines()
        .find(|l| l.starts_with("Total: "))
        .unwrap_or("no total")
        .to_owned();
    Refereed { verdicts, total, text }
}
