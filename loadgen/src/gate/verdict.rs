//! One judgement of runs against a baseline, for every front end (`stampede gate`, `stampede report
//! --baseline`): first whether the runs can be compared with the baseline at all — same scenario, a
//! complete run, the same build, the same store — which is a refusal (exit 2), not a verdict; then the
//! checks, and the outcome they add up to.

use std::fmt;

use super::baseline::{self, Baseline};
use super::check::{self, Check, Tolerances};
use crate::data::Verdict;
use crate::results::Results;

/// Why runs cannot be judged against a baseline: the comparison itself would be meaningless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoRuns,
    OtherScenario { baseline: String, run: String },
    Interrupted,
    OtherBuild { baseline: String, run: String },
    OtherStore { baseline: String, run: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoRuns => write!(f, "no runs to judge"),
            Refusal::OtherScenario { baseline, run } => write!(
                f,
                "the baseline is of scenario {baseline:?}, the results are of {run:?}"
            ),
            Refusal::Interrupted => write!(f, "a results file of an interrupted run cannot be gated"),
            Refusal::OtherBuild { baseline, run } => write!(
                f,
                "the baseline was recorded with a {baseline} build, the results with a {run} build: \
                 speed is not comparable"
            ),
            Refusal::OtherStore { baseline, run } => write!(
                f,
                "the baseline was recorded against a gateway on {baseline}, the results against one on \
                 {run}: not comparable"
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// What the checks add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// Something got worse beyond what is allowed.
    Regression,
    /// Nothing got worse, but a speed figure got better beyond the allowed band: the baseline no longer
    /// describes this tree, and a slowdown back to it would pass unseen. A faster run is no regression,
    /// so this passes with a warning unless `--fail-on-stale` (`StalePolicy::Fail`) is given.
    Stale,
}

/// What a stale baseline does to the gate's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StalePolicy {
    /// Pass, and say "consider re-recording".
    #[default]
    Warn,
    /// Fail (exit 1): for a committed baseline that must describe the tree (`--fail-on-stale`).
    Fail,
}

impl Outcome {
    pub fn of(checks: &[Check]) -> Outcome {
        if checks.iter().any(|c| c.verdict == Verdict::Fail) {
            Outcome::Regression
        } else if checks.iter().any(|c| c.verdict == Verdict::Stale) {
            Outcome::Stale
        } else {
            Outcome::Pass
        }
    }

    /// Exit code of `stampede gate`: 0 pass (a stale baseline too, unless it is to fail); 1 a regression.
    pub fn exit_code(self, stale: StalePolicy) -> u8 {
        match (self, stale) {
            (Outcome::Pass, _) | (Outcome::Stale, StalePolicy::Warn) => 0,
            (Outcome::Regression, _) | (Outcome::Stale, StalePolicy::Fail) => 1,
        }
    }
}

impl Outcome {
    /// The verdict's line, as the exit code under `stale` will have it.
    pub fn headline(self, stale: StalePolicy) -> &'static str {
        match (self, stale) {
            (Outcome::Pass, _) => "PASS",
            (Outcome::Regression, _) => "FAIL: regression",
            (Outcome::Stale, StalePolicy::Warn) => {
                "PASS, faster than the baseline beyond the allowed band — consider re-recording it"
            }
            (Outcome::Stale, StalePolicy::Fail) => {
                "FAIL: faster than the baseline beyond the allowed band — the baseline is stale, re-record it \
                 (--fail-on-stale)"
            }
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.headline(StalePolicy::Warn))
    }
}

/// The store a run's gateway used, when the run knows it.
fn store_of(r: &Results) -> Option<&str> {
    r.target.store.as_deref()
}

/// Whether `runs` can be judged against `baseline`.
pub fn admissible(baseline: &Baseline, runs: &[Results]) -> Result<(), Refusal> {
    if runs.is_empty() {
        return Err(Refusal::NoRuns);
    }
    for r in runs {
        if r.scenario.name != baseline.scenario {
            return Err(Refusal::OtherScenario {
                baseline: baseline.scenario.clone(),
                run: r.scenario.name.clone(),
            });
        }
        if !r.complete {
            return Err(Refusal::Interrupted);
        }
        if !baseline.environment.build.is_empty() && r.environment.build != baseline.environment.build {
            return Err(Refusal::OtherBuild {
                baseline: baseline.environment.build.clone(),
                run: r.environment.build.clone(),
            });
        }
        if let (Some(b), Some(s)) = (baseline.store.as_deref(), store_of(r))
            && b != s
        {
            return Err(Refusal::OtherStore {
                baseline: b.to_owned(),
                run: s.to_owned(),
            });
        }
    }
    Ok(())
}

/// Judge `runs` (their medians, when several) against `baseline` and the scenario's thresholds.
pub fn judge_runs(baseline: &Baseline, runs: &[Results], tolerances: &Tolerances) -> Result<Vec<Check>, Refusal> {
    admissible(baseline, runs)?;
    let metrics: Vec<_> = runs.iter().map(Results::metrics).collect();
    let current = baseline::medians(&baseline::aggregate(&metrics));
    let thresholds = crate::data::threshold::parse_all(&runs[0].scenario.spec.thresholds).unwrap_or_default();
    Ok(check::gate(baseline, &current, &thresholds, tolerances))
}
