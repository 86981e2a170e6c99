//! The gate: a run (or the median of several) against a baseline and the scenario's thresholds.
//!
//! Absolute checks are signals that do not depend on the machine — failure rate, unexpected statuses,
//! blocked queries, post-load CPU, MCP sessions left open — against a fixed limit (never stricter than
//! what the baseline itself achieved). Relative checks are the speed signals — RPS, p50, p99, generator
//! and target CPU per request — whose allowed change is the larger of a tolerance and three times the
//! baseline's own relative spread (MAD / median), so a noisy machine does not fail a good change.

use std::collections::BTreeMap;

use super::baseline::{Baseline, medians};
use crate::data::metrics::{Better, GateRule, METRICS, Metric};
use crate::data::{Metrics, Threshold, Verdict};
use crate::format::{bound, num};

/// The absolute checks: (metric, limit), lower is better; scope `all`.
fn absolute() -> impl Iterator<Item = (&'static str, f64)> {
    METRICS.iter().filter_map(|m| match m.gate {
        GateRule::Absolute { limit } => Some((m.name, limit)),
        _ => None,
    })
}

/// The relative checks, with their rule; scope `all`.
fn relative() -> impl Iterator<Item = &'static Metric> {
    METRICS.iter().filter(|m| matches!(m.gate, GateRule::Relative { .. }))
}

/// The relative tolerances of the speed checks: the defaults above, some replaced with
/// `--tolerance METRIC=PCT` (a CI machine other than the one that recorded the baseline needs wider ones).
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerances(BTreeMap<&'static str, f64>);

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances(
            relative()
                .filter_map(|m| match m.gate {
                    GateRule::Relative { tolerance, .. } => Some((m.name, tolerance)),
                    _ => None,
                })
                .collect(),
        )
    }
}

impl Tolerances {
    /// Apply `METRIC=PCT` settings (`rps=30%`, `p99=1.0` = 100 %), naming anything it does not understand.
    pub fn with(mut self, settings: &[String]) -> Result<Self, String> {
        for setting in settings {
            let (metric, value) = setting
                .split_once('=')
                .ok_or_else(|| format!("--tolerance {setting:?}: expected METRIC=PCT, e.g. rps=30%"))?;
            let metric = metric.trim();
            let Some(name) = relative().map(|m| m.name).find(|m| *m == metric) else {
                let known: Vec<_> = relative().map(|m| m.name).collect();
                return Err(format!(
                    "--tolerance {setting:?}: {metric:?} is not a relative check (one of {})",
                    known.join(", ")
                ));
            };
            let value = value.trim();
            let fraction = match value.strip_suffix('%') {
                Some(pct) => pct.trim().parse::<f64>().map(|p| p / 100.0),
                None => value.parse::<f64>(),
            }
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .ok_or_else(|| format!("--tolerance {setting:?}: {value:?} is not a percentage like 30%"))?;
            self.0.insert(name, fraction);
        }
        Ok(self)
    }

    pub fn get(&self, metric: &str) -> f64 {
        self.0.get(metric).copied().unwrap_or(0.0)
    }
}

/// How many baseline spreads a change may be before it counts.
pub const SPREAD_FACTOR: f64 = 3.0;

/// Why a relative check cannot be judged on this run, if it cannot: too few samples for a percentile
/// (a p99 of 300 requests is the third-slowest request, which is noise, not a figure), or a
/// CPU-per-request figure resting on too few CPU seconds (process CPU time comes in 10 ms ticks, so
/// 0.1 s of CPU is only known to ±10 % — as much as a tolerance).
fn too_few(metric: &Metric, value: f64, samples: u64) -> Option<String> {
    let GateRule::Relative {
        min_samples,
        min_cpu_seconds,
        ..
    } = metric.gate
    else {
        return None;
    };
    if samples < min_samples {
        return Some(format!("needs {min_samples} samples"));
    }
    (value * (samples as f64) < min_cpu_seconds).then(|| format!("needs {min_cpu_seconds} CPU s"))
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Check {
    /// `absolute`, `relative` or `threshold`.
    pub kind: &'static str,
    pub name: String,
    /// The metric judged (its unit says how to show the figures).
    pub metric: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// Relative change from the baseline.
    pub change: Option<f64>,
    pub allowed: String,
    pub verdict: Verdict,
}

/// The allowed relative change of a speed metric: tolerance, or the baseline's noise if larger.
pub fn allowed_change(tolerance: f64, median: f64, mad: f64) -> f64 {
    let spread = if median.abs() > 0.0 { mad / median.abs() } else { 0.0 };
    tolerance.max(SPREAD_FACTOR * spread)
}

pub fn gate(
    baseline: &Baseline,
    current: &BTreeMap<String, Metrics>,
    thresholds: &[(String, Threshold)],
    tolerances: &Tolerances,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let empty = Metrics::default();
    let now = current.get("all").unwrap_or(&empty);
    let base = baseline.metrics.get("all");
    // A scenario's own threshold on a metric of scope `all` is the bar for it: one bar, not two.
    let own_bar = |metric: &str| thresholds.iter().any(|(scope, t)| scope == "all" && t.metric == metric);
    for (metric, limit) in absolute().filter(|(m, _)| !own_bar(m)) {
        let b = base.and_then(|m| m.get(metric));
        let limit = b.map_or(limit, |s| limit.max(s.median + SPREAD_FACTOR * s.mad));
        let value = now.get(metric);
        checks.push(Check {
            kind: "absolute",
            name: metric.to_owned(),
            metric: metric.to_owned(),
            baseline: b.map(|s| s.median),
            current: value,
            change: None,
            allowed: format!("<= {}", figure(metric, limit)),
            verdict: match value {
                None => Verdict::NotMeasured,
                Some(v) if v <= limit + 1e-12 => Verdict::Pass,
                Some(_) => Verdict::Fail,
            },
        });
    }
    for rule in relative() {
        let metric = rule.name;
        let tolerance = tolerances.get(metric);
        let b = base.and_then(|m| m.get(metric));
        let value = now.get(metric);
        let samples = now.get("count").unwrap_or(0.0) as u64;
        let (verdict, change, allowed) = match (b, value) {
            (None, _) => (Verdict::NoBaseline, None, "-".to_owned()),
            (_, None) => (Verdict::NotMeasured, None, "-".to_owned()),
            (Some(_), Some(v)) if let Some(why) = too_few(rule, v, samples) => (Verdict::NotMeasured, None, why),
            (Some(s), Some(v)) => {
                let allowed = allowed_change(tolerance, s.median, s.mad);
                let change = if s.median != 0.0 {
                    (v - s.median) / s.median.abs()
                } else {
                    0.0
                };
                // Worse beyond the allowed change fails. Better by as much (the same factor the other
                // way: 1.5× slower allowed ⇒ 1.5× faster is stale) means the baseline no longer
                // describes this tree: a slowdown back to it would pass unseen.
                let ratio = 1.0 + change;
                let (worse, stale) = match rule.better {
                    Better::Higher => (change < -allowed, allowed < 1.0 && ratio > 1.0 / (1.0 - allowed)),
                    Better::Lower => (change > allowed, ratio < 1.0 / (1.0 + allowed)),
                };
                let verdict = if worse {
                    Verdict::Fail
                } else if stale {
                    Verdict::Stale
                } else {
                    Verdict::Pass
                };
                let (worst, best) = match rule.better {
                    Better::Higher => (-allowed, (1.0 / (1.0 - allowed) - 1.0).min(99.99)),
                    Better::Lower => (allowed, 1.0 / (1.0 + allowed) - 1.0),
                };
                let (low, high) = if worst < best { (worst, best) } else { (best, worst) };
                (
                    verdict,
                    Some(change),
                    format!("{:+.0}%..{:+.0}%", low * 100.0, high * 100.0),
                )
            }
        };
        checks.push(Check {
            kind: "relative",
            name: metric.to_owned(),
            metric: metric.to_owned(),
            baseline: b.map(|s| s.median),
            current: value,
            change,
            allowed,
            verdict,
        });
    }
    let base_medians = medians(&baseline.metrics);
    for j in crate::data::threshold::judge(thresholds, current, Some(&base_medians)) {
        let judged = thresholds
            .iter()
            .find(|(scope, t)| scope == &j.scope && t.text == j.threshold);
        let metric = judged.map_or_else(String::new, |(_, t)| t.metric.clone());
        let base_value = judged.and_then(|(scope, t)| base_medians.get(scope)?.get(&t.metric));
        checks.push(Check {
            kind: "threshold",
            name: if j.scope == "all" {
                j.threshold.clone()
            } else {
                format!("{}: {}", j.scope, j.threshold)
            },
            baseline: base_value,
            current: j.value,
            change: None,
            allowed: j.bound.map_or("-".into(), |b| figure(&metric, b)),
            metric,
            verdict: j.verdict,
        });
    }
    checks
}

/// A figure of `metric` with its unit: `0.299 ms`, `0.10 %`, `1200/s`, `3.1e-4 s`, `21.5 MiB`; a bare number for
/// a count or a metric not in the table.
pub fn figure(metric: &str, v: f64) -> String {
    use crate::data::metrics::MetricKind;
    match crate::data::metrics::metric_kind(metric) {
        Some(MetricKind::Millis) => format!("{} ms", bound(v)),
        Some(MetricKind::Ratio) => format!("{} %", bound(v * 100.0)),
        Some(MetricKind::PercentOfCore) => format!("{} % of a core", bound(v)),
        Some(MetricKind::PerSecond) => format!("{}/s", num(Some(v))),
        Some(MetricKind::Seconds) => format!("{} s", num(Some(v))),
        Some(MetricKind::Bytes) => crate::format::bytes(v),
        Some(MetricKind::BytesPerMinute) => format!("{}/min", crate::format::bytes(v)),
        Some(MetricKind::PerMinute) => format!("{}/min", num(Some(v))),
        Some(MetricKind::Count) | None => num(Some(v)),
    }
}

/// Passed when nothing got worse: a faster run (a stale baseline) passes with a warning; not measured
/// and no baseline are reported, not failed.
pub fn passed(checks: &[Check]) -> bool {
    super::verdict::Outcome::of(checks) != super::verdict::Outcome::Regression
}

#[cfg(test)]
mod tests {
    use super::super::baseline::Stat;
    use super::*;

    fn baseline(all: &[(&str, f64, f64)]) -> Baseline {
        let metrics = all
            .iter()
            .map(|(n, median, mad)| {
                (
                    n.to_string(),
                    Stat {
                        median: *median,
                        mad: *mad,
                        runs: 3,
                    },
                )
            })
            .collect();
        Baseline {
            schema_version: 1,
            kind: "stampede-baseline".into(),
            scenario: "s".into(),
            runs: 3,
            created_at: String::new(),
            environment: crate::host::Environment::here(),
            store: None,
            metrics: BTreeMap::from([("all".to_owned(), metrics)]),
        }
    }

    fn now(values: &[(&str, f64)]) -> BTreeMap<String, Metrics> {
        let mut m = Metrics::default();
        for (n, v) in values {
            m.set(n, Some(*v));
        }
        BTreeMap::from([("all".to_owned(), m)])
    }

    fn verdict(checks: &[Check], name: &str) -> Verdict {
        checks.iter().find(|c| c.name == name).unwrap().verdict
    }

    #[test]
    fn allowed_change_is_the_larger_of_tolerance_and_noise() {
        assert_eq!(allowed_change(0.15, 100.0, 1.0), 0.15);
        assert!(
            (allowed_change(0.15, 100.0, 10.0) - 0.30).abs() < 1e-9,
            "3 × 10% spread"
        );
        assert_eq!(allowed_change(0.15, 0.0, 5.0), 0.15);
    }

    #[test]
    fn tails_of_small_runs_are_not_judged() {
        let b = baseline(&[("p99", 100.0, 5.0), ("p50", 10.0, 1.0)]);
        let c = gate(
            &b,
            &now(&[("p99", 500.0), ("p50", 11.0), ("count", 300.0)]),
            &[],
            &Tolerances::default(),
        );
        assert_eq!(verdict(&c, "p99"), Verdict::NotMeasured, "300 samples: p99 is noise");
        assert_eq!(verdict(&c, "p50"), Verdict::Pass);
    }

    #[test]
    fn cpu_per_request_resting_on_a_few_ticks_is_not_judged() {
        let b = baseline(&[("generator_cpu_per_request", 6.5e-4, 0.0)]);
        // 200 requests × 0.5 ms = 0.1 CPU s: ten ticks of the clock, not a figure to judge.
        let c = gate(
            &b,
            &now(&[("generator_cpu_per_request", 5.0e-4), ("count", 200.0)]),
            &[],
            &Tolerances::default(),
        );
        assert_eq!(verdict(&c, "generator_cpu_per_request"), Verdict::NotMeasured);
        let c = gate(
            &b,
            &now(&[("generator_cpu_per_request", 5.0e-4), ("count", 5000.0)]),
            &[],
            &Tolerances::default(),
        );
        assert_eq!(
            verdict(&c, "generator_cpu_per_request"),
            Verdict::Stale,
            "2.5 CPU s: judged"
        );
    }

    #[test]
    fn speed_regressions_fail_in_the_right_direction() {
        let b = baseline(&[("rps", 1000.0, 10.0), ("p99", 100.0, 5.0)]);
        let c = gate(
            &b,
            &now(&[("rps", 900.0), ("p99", 140.0), ("count", 5000.0)]),
            &[],
            &Tolerances::default(),
        );
        assert_eq!(verdict(&c, "rps"), Verdict::Pass, "-10% within 15%");
        assert_eq!(verdict(&c, "p99"), Verdict::Pass, "+40% within 50%");
        let c = gate(
            &b,
            &now(&[("rps", 800.0), ("p99", 160.0), ("count", 5000.0)]),
            &[],
            &Tolerances::default(),
        );
        assert_eq!(verdict(&c, "rps"), Verdict::Fail);
        assert_eq!(verdict(&c, "p99"), Verdict::Fail);
        let c = gate(&b, &now(&[("rps", 1100.0), ("p99", 80.0)]), &[], &Tolerances::default());
        assert!(passed(&c), "faster within the band is a pass");
        let rps = c.iter().find(|c| c.name == "rps").unwrap();
        assert!((rps.change.unwrap() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn tolerances_can_be_widened_per_metric_and_bad_ones_are_named() {
        let b = baseline(&[("rps", 1000.0, 0.0)]);
        let wide = Tolerances::default().with(&["rps=30%".into()]).unwrap();
        assert_eq!(
            verdict(&gate(&b, &now(&[("rps", 750.0)]), &[], &wide), "rps"),
            Verdict::Pass
        );
        assert_eq!(
            verdict(&gate(&b, &now(&[("rps", 750.0)]), &[], &Tolerances::default()), "rps"),
            Verdict::Fail
        );
        assert!(
            Tolerances::default()
                .with(&["rps".into()])
                .unwrap_err()
                .contains("METRIC=PCT")
        );
        assert!(
            Tolerances::default()
                .with(&["failure_rate=5%".into()])
                .unwrap_err()
                .contains("not a relative check")
        );
        assert!(
            Tolerances::default()
                .with(&["p99=lots".into()])
                .unwrap_err()
                .contains("not a percentage")
        );
    }

    #[test]
    fn faster_beyond_the_band_says_the_baseline_is_stale() {
        use super::super::verdict::Outcome;
        let b = baseline(&[("rps", 1000.0, 0.0), ("p50", 10.0, 0.0)]);
        let judge = |rps: f64, p50: f64| {
            gate(
                &b,
                &now(&[("rps", rps), ("p50", p50), ("count", 5000.0)]),
                &[],
                &Tolerances::default(),
            )
        };
        // p50 may be 25 % slower, so 1/1.25 = 0.8 of the baseline is as far the other way.
        let c = judge(1000.0, 7.9);
        assert_eq!(verdict(&c, "p50"), Verdict::Stale);
        assert_eq!(Outcome::of(&c), Outcome::Stale);
        assert!(passed(&c), "a faster run is no regression");
        use super::super::verdict::StalePolicy;
        assert_eq!(Outcome::of(&c).exit_code(StalePolicy::Warn), 0, "a warning");
        assert_eq!(Outcome::of(&c).exit_code(StalePolicy::Fail), 1, "--fail-on-stale");
        assert_eq!(c.iter().find(|c| c.name == "p50").unwrap().allowed, "-20%..+25%");
        assert_eq!(verdict(&judge(1000.0, 8.1), "p50"), Verdict::Pass);
        // RPS may be 15 % lower; 1/0.85 = 1.18 × higher is stale.
        assert_eq!(verdict(&judge(1200.0, 10.0), "rps"), Verdict::Stale);
        assert_eq!(verdict(&judge(1150.0, 10.0), "rps"), Verdict::Pass);
        // A regression outranks a stale figure.
        assert_eq!(Outcome::of(&judge(800.0, 7.0)), Outcome::Regression);
        assert_eq!(Outcome::of(&judge(1000.0, 10.0)), Outcome::Pass);
    }

    #[test]
    fn a_noisy_baseline_widens_what_is_allowed() {
        let b = baseline(&[("rps", 1000.0, 100.0)]);
        let c = gate(&b, &now(&[("rps", 750.0)]), &[], &Tolerances::default());
        assert_eq!(verdict(&c, "rps"), Verdict::Pass, "-25% within 3 × 10% spread");
    }

    #[test]
    fn absolute_checks_use_limits_never_stricter_than_the_baseline() {
        let b = baseline(&[("blocked_queries.max", 0.0, 0.0), ("post_load_cpu.mean", 0.5, 0.1)]);
        let c = gate(
            &b,
            &now(&[
                ("blocked_queries.max", 3.0),
                ("post_load_cpu.mean", 150.0),
                ("failure_rate", 0.0),
            ]),
            &[],
            &Tolerances::default(),
        );
        assert_eq!(verdict(&c, "blocked_queries.max"), Verdict::Fail);
        assert_eq!(verdict(&c, "post_load_cpu.mean"), Verdict::Fail);
        assert_eq!(verdict(&c, "failure_rate"), Verdict::Pass);
        assert_eq!(verdict(&c, "mcp_sessions_left"), Verdict::NotMeasured);
        assert!(!passed(&c));
        let noisy = baseline(&[("post_load_cpu.mean", 8.0, 1.0)]);
        let c = gate(
            &noisy,
            &now(&[("post_load_cpu.mean", 10.0)]),
            &[],
            &Tolerances::default(),
        );
        assert_eq!(verdict(&c, "post_load_cpu.mean"), Verdict::Pass, "limit 8 + 3 × 1 = 11");
    }

    #[test]
    fn thresholds_against_the_baseline() {
        let b = baseline(&[("rps", 1000.0, 0.0)]);
        let t = vec![(
            "all".to_owned(),
            crate::data::threshold::parse("rps > baseline * 0.9").unwrap(),
        )];
        let c = gate(&b, &now(&[("rps", 850.0)]), &t, &Tolerances::default());
        assert_eq!(verdict(&c, "rps > baseline * 0.9"), Verdict::Fail);
        let c = gate(&b, &now(&[("rps", 950.0)]), &t, &Tolerances::default());
        assert_eq!(verdict(&c, "rps > baseline * 0.9"), Verdict::Pass);
    }
}
