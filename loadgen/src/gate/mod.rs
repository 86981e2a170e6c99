//! Judging runs: the named metrics of a run, the threshold grammar, baselines (median and spread over
//! repeated runs), the gate (absolute, relative and threshold checks) and its reports.

pub mod baseline;
pub mod check;
pub mod metrics;
pub mod report;
pub mod threshold;
pub mod verdict;

use std::collections::BTreeMap;

pub use metrics::Metrics;
pub use threshold::{Threshold, Verdict};

/// One threshold judged.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Judged {
    pub scope: String,
    pub threshold: String,
    pub verdict: Verdict,
    pub value: Option<f64>,
    pub bound: Option<f64>,
}

/// Parse every threshold of a scenario (`scope → expressions`); the errors name scope and expression.
pub fn parse_all(spec: &BTreeMap<String, Vec<String>>) -> Result<Vec<(String, Threshold)>, Vec<String>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (scope, exprs) in spec {
        for e in exprs {
            match threshold::parse(e) {
                Ok(t) => out.push((scope.clone(), t)),
                Err(msg) => errors.push(format!("thresholds.{scope}: {msg}")),
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Judge thresholds against metrics by scope (and a baseline's, when there is one).
pub fn judge(
    thresholds: &[(String, Threshold)],
    scopes: &BTreeMap<String, Metrics>,
    baseline: Option<&BTreeMap<String, Metrics>>,
) -> Vec<Judged> {
    thresholds
        .iter()
        .map(|(scope, t)| {
            let empty = Metrics::default();
            let metrics = scopes.get(scope).unwrap_or(&empty);
            let (verdict, value, bound) = t.evaluate(metrics, baseline.and_then(|b| b.get(scope)));
            Judged {
                scope: scope.clone(),
                threshold: t.text.clone(),
                verdict,
                value,
                bound,
            }
        })
        .collect()
}
