//! A baseline: a scenario run N times, each metric's median and its run-to-run spread (median absolute
//! deviation), so a gate can tell a regression from the machine's own noise.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::data::Metrics;
use crate::host::Environment;
use crate::results::Results;

pub const BASELINE_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    pub median: f64,
    /// Median absolute deviation from the median.
    pub mad: f64,
    pub runs: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baseline {
    pub schema_version: u32,
    pub kind: String,
    pub scenario: String,
    pub runs: usize,
    pub created_at: String,
    pub environment: Environment,
    /// The spawned gateway's store (`sqlite`, `postgres`) the runs were against; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Scope (`all` or an action) → metric → statistics.
    pub metrics: BTreeMap<String, BTreeMap<String, Stat>>,
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Median and MAD of each metric over several runs' metrics (a metric missing from a run is left out).
pub fn aggregate(runs: &[BTreeMap<String, Metrics>]) -> BTreeMap<String, BTreeMap<String, Stat>> {
    let mut out: BTreeMap<String, BTreeMap<String, Stat>> = BTreeMap::new();
    let scopes: std::collections::BTreeSet<&String> = runs.iter().flat_map(|r| r.keys()).collect();
    for scope in scopes {
        let names: std::collections::BTreeSet<String> = runs
            .iter()
            .filter_map(|r| r.get(scope))
            .flat_map(|m| m.names())
            .collect();
        for name in names {
            let mut values: Vec<f64> = runs.iter().filter_map(|r| r.get(scope)?.get(&name)).collect();
            if values.is_empty() {
                continue;
            }
            let med = median(&mut values);
            let mut deviations: Vec<f64> = values.iter().map(|v| (v - med).abs()).collect();
            let mad = median(&mut deviations);
            out.entry(scope.clone()).or_default().insert(
                name,
                Stat {
                    median: med,
                    mad,
                    runs: values.len(),
                },
            );
        }
    }
    out
}

/// The medians as metrics, by scope.
pub fn medians(stats: &BTreeMap<String, BTreeMap<String, Stat>>) -> BTreeMap<String, Metrics> {
    stats
        .iter()
        .map(|(scope, m)| {
            let mut metrics = Metrics::default();
            for (name, s) in m {
                metrics.set(name, Some(s.median));
            }
            (scope.clone(), metrics)
        })
        .collect()
}

impl Baseline {
    pub fn from_runs(runs: &[Results]) -> anyhow::Result<Baseline> {
        let first = runs.first().context("a baseline needs at least one run")?;
        let metrics: Vec<_> = runs.iter().map(Results::metrics).collect();
        Ok(Baseline {
            schema_version: BASELINE_SCHEMA_VERSION,
            kind: "stampede-baseline".into(),
            scenario: first.scenario.name.clone(),
            runs: runs.len(),
            created_at: first.started_at.clone(),
            environment: first.environment.clone(),
            store: first.target.store.clone(),
            metrics: aggregate(&metrics),
        })
    }

    pub fn read(path: &Path) -> anyhow::Result<Baseline> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the baseline {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        if value.get("kind").is_none() && value.get("series").is_some() {
            anyhow::bail!(
                "{} is the results file of a run, not a baseline (record one with `stampede baseline`)",
                path.display()
            );
        }
        let mut b: Baseline =
            serde_json::from_value(value).with_context(|| format!("{}: not a stampede baseline", path.display()))?;
        if b.kind != "stampede-baseline" || b.schema_version != BASELINE_SCHEMA_VERSION {
            anyhow::bail!(
                "{}: not a stampede baseline of schema version {BASELINE_SCHEMA_VERSION}",
                path.display()
            );
        }
        b.rename_metrics();
        Ok(b)
    }

    /// A baseline recorded before a metric was renamed names it the old way: read it under the new name.
    fn rename_metrics(&mut self) {
        for scope in self.metrics.values_mut() {
            for (old, new) in crate::data::metrics::RENAMED {
                if let Some(stat) = scope.remove(*old) {
                    scope.entry((*new).to_owned()).or_insert(stat);
                }
            }
        }
    }

    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        crate::results::write_file_atomically(path, (serde_json::to_string_pretty(self)? + "\n").as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_recorded_under_its_old_name_is_read_under_its_new_one() {
        let stat = Stat {
            median: 0.0,
            mad: 0.0,
            runs: 5,
        };
        let mut b = Baseline {
            schema_version: BASELINE_SCHEMA_VERSION,
            kind: "stampede-baseline".into(),
            scenario: "s".into(),
            runs: 5,
            created_at: String::new(),
            environment: Environment::here(),
            store: None,
            metrics: BTreeMap::from([(
                "all".to_owned(),
                BTreeMap::from([("sse_sessions_left".to_owned(), stat)]),
            )]),
        };
        b.rename_metrics();
        assert_eq!(b.metrics["all"].get("mcp_sessions_left").map(|s| s.runs), Some(5));
        assert!(!b.metrics["all"].contains_key("sse_sessions_left"));
    }

    #[test]
    fn median_and_mad() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        let run = |rps: f64| {
            let mut m = Metrics::default();
            m.set("rps", Some(rps));
            BTreeMap::from([("all".to_owned(), m)])
        };
        let stats = aggregate(&[run(100.0), run(110.0), run(90.0), run(200.0)]);
        let s = stats["all"]["rps"];
        assert_eq!(s.median, 105.0);
        assert_eq!(
            s.mad, 10.0,
            "deviations 5, 5, 15, 95: median 10 — robust to the outlier"
        );
        assert_eq!(s.runs, 4);
    }
}
