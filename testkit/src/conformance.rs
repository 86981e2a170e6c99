//! The official MCP conformance suite (`@modelcontextprotocol/conformance` from npm, through
//! `scripts/conformance.sh`) as a referee: run against a server's URL, its verdict per scenario.

use std::process::Command;

/// The suite's runs: the active suite (every server scenario of the current version) and the
/// 2026-07-28 requirements (that era's scenarios, the tasks extension's among them), with the number
/// of scenarios each held when the suite was pinned: a run with fewer did not run whole.
pub const ACTIVE: Run = Run {
    args: &[],
    scenarios: 31,
};
pub const REQUIRED_2026: Run = Run {
    args: &["--requirements", "2026-07-28"],
    scenarios: 50,
};

/// One way to run the suite.
#[derive(Clone, Copy)]
pub struct Run {
    pub args: &'static [&'static str],
    pub scenarios: usize,
}

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

    /// Every scenario of the run passed, and the run was whole.
    pub fn assert_whole(&self, run: Run) {
        assert!(
            self.verdicts.len() >= run.scenarios,
            "the run was not whole:\n{}",
            self.text
        );
        assert!(
            self.passing() == self.verdicts.len() && self.total.ends_with(" 0 failed"),
            "{}",
            self.text
        );
    }

    /// Each of `scenarios` passed.
    pub fn assert_passed(&self, scenarios: &[&str]) {
        let failed: Vec<_> = scenarios.iter().filter(|s| !self.passed(s)).collect();
        assert!(failed.is_empty(), "{failed:?} did not pass:\n{}", self.text);
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

/// Run the suite's server scenarios of `run` against `url`, and say how it went on stderr.
pub fn referee(url: &str, run: Run) -> Refereed {
    let out = suite()
        .expect("the suite is installed")
        .args(["server", "--url", url, "--timeout", "20000"])
        .args(run.args)
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
    let refereed = Refereed { verdicts, total, text };
    eprintln!(
        "{url} {:?}: {} of {} scenarios pass; {}",
        run.args,
        refereed.passing(),
        refereed.verdicts.len(),
        refereed.total
    );
    refereed
}
