//! Thresholds, in the spirit of k6's: `"p99 < 250ms"`, `"failure_rate < 0.1%"`,
//! `"blocked_queries.max == 0"`, `"post_load_cpu.mean < 2%"`, `"rps > baseline * 0.85"`. Each names a
//! metric, a comparison and a value with its unit — or the baseline's value times a factor. Anything
//! else is an error that says what was expected.

use std::collections::BTreeMap;
use std::fmt;

use super::metrics::{MetricKind, Metrics, metric_kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => (a - b).abs() <= f64::EPSILON * b.abs().max(1.0),
            Op::Ne => (a - b).abs() > f64::EPSILON * b.abs().max(1.0),
        }
    }

    fn text(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    /// In the metric's own unit (ms, a fraction, percent of a core, a count, per second, bytes, per
    /// minute).
    Value(f64),
    /// The baseline's value of the same metric, times this.
    Baseline(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub text: String,
    pub metric: String,
    pub op: Op,
    pub bound: Bound,
}

/// What a threshold says about a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// The metric was not measured in this run: neither pass nor fail.
    NotMeasured,
    /// `baseline * x` without a baseline to compare with.
    NoBaseline,
    /// A speed check better than the baseline beyond the allowed band: the baseline is out of date.
    Stale,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::NotMeasured => "not measured",
            Verdict::NoBaseline => "no baseline",
            Verdict::Stale => "faster",
        })
    }
}

/// A threshold expression that does not parse; the message quotes it and says what would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("{text:?}: no comparison; write e.g. \"p99 < 250ms\" (one of < <= > >= == !=)")]
    NoComparison { text: String },
    #[error("{text:?}: unknown metric {metric:?}; known: {known}")]
    UnknownMetric {
        text: String,
        metric: String,
        known: String,
    },
    #[error("{text:?}: after \"baseline *\" give a number, e.g. 0.85")]
    BaselineFactor { text: String },
    #[error("{text:?}: write \"baseline\" or \"baseline * 0.85\"")]
    Baseline { text: String },
    #[error("{text:?}: {value:?} is not a number with a unit")]
    NotANumber { text: String, value: String },
    #[error("{text:?}: {unit:?} does not fit this metric; give {want}")]
    Unit {
        text: String,
        unit: String,
        want: &'static str,
    },
}

pub fn parse(text: &str) -> Result<Threshold, SyntaxError> {
    let t = text.trim();
    let ops = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];
    let (pos, len, op) = ops
        .iter()
        .filter_map(|(s, op)| t.find(s).map(|p| (p, s.len(), *op)))
        .min_by_key(|(p, len, _)| (*p, std::cmp::Reverse(*len)))
        .ok_or_else(|| SyntaxError::NoComparison { text: text.to_owned() })?;
    let metric = t[..pos].trim();
    let value = t[pos + len..].trim();
    let kind = metric_kind(metric).ok_or_else(|| SyntaxError::UnknownMetric {
        text: text.to_owned(),
        metric: metric.to_owned(),
        known: super::metrics::METRICS
            .iter()
            .map(|m| m.name)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let bound = if let Some(rest) = value.strip_prefix("baseline") {
        let rest = rest.trim();
        let factor = match rest.strip_prefix('*') {
            Some(f) => f
                .trim()
                .parse::<f64>()
                .map_err(|_| SyntaxError::BaselineFactor { text: text.to_owned() })?,
            None if rest.is_empty() => 1.0,
            None => return Err(SyntaxError::Baseline { text: text.to_owned() }),
        };
        Bound::Baseline(factor)
    } else {
        Bound::Value(value_in_unit(text, value, kind)?)
    };
    Ok(Threshold {
        text: t.to_owned(),
        metric: super::metrics::metric(metric).map_or(metric, |m| m.name).to_owned(),
        op,
        bound,
    })
}

/// Read `value` in the unit of a metric of `kind`.
fn value_in_unit(text: &str, value: &str, kind: MetricKind) -> Result<f64, SyntaxError> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'))
        .unwrap_or(value.len());
    let (num, unit) = value.split_at(split);
    let n: f64 = num.parse().map_err(|_| SyntaxError::NotANumber {
        text: text.to_owned(),
        value: value.to_owned(),
    })?;
    let unit = unit.trim();
    let bad = |want: &'static str| {
        Err(SyntaxError::Unit {
            text: text.to_owned(),
            unit: unit.to_owned(),
            want,
        })
    };
    match kind {
        MetricKind::Millis => match unit {
            "ms" => Ok(n),
            "s" => Ok(n * 1000.0),
            "us" | "µs" => Ok(n / 1000.0),
            _ => bad("a time: 250ms, 1.5s"),
        },
        MetricKind::Ratio => match unit {
            "%" => Ok(n / 100.0),
            "" => Ok(n),
            _ => bad("a percentage (0.1%) or a fraction (0.001)"),
        },
        MetricKind::PercentOfCore => match unit {
            "%" | "" => Ok(n),
            _ => bad("a percentage of one core (2%)"),
        },
        MetricKind::Count | MetricKind::PerSecond | MetricKind::Seconds | MetricKind::PerMinute => match unit {
            "" => Ok(n),
            "/s" if kind == MetricKind::PerSecond => Ok(n),
            "s" if kind == MetricKind::Seconds => Ok(n),
            "/min" if kind == MetricKind::PerMinute => Ok(n),
            _ => bad("a plain number"),
        },
        MetricKind::Bytes => match bytes(unit) {
            Some(scale) => Ok(n * scale),
            // 0 needs no unit; any other bare number would be a guess between B and MiB.
            None if unit.is_empty() && n == 0.0 => Ok(0.0),
            None => bad("a size: 256MiB, 1GiB, 512KiB, 100B"),
        },
        MetricKind::BytesPerMinute => match unit.strip_suffix("/min").and_then(bytes) {
            Some(scale) => Ok(n * scale),
            None if unit.is_empty() && n == 0.0 => Ok(0.0),
            None => bad("a size per minute: 1MiB/min, 512KiB/min"),
        },
    }
}

/// Bytes in one `unit` (binary, as /proc counts memory; "MB" is refused rather than guessed at).
fn bytes(unit: &str) -> Option<f64> {
    Some(match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    })
}

impl Threshold {
    /// Evaluate against `metrics` (of the scope the threshold is in), and the baseline's if any.
    pub fn evaluate(&self, metrics: &Metrics, baseline: Option<&Metrics>) -> (Verdict, Option<f64>, Option<f64>) {
        let Some(value) = metrics.get(&self.metric) else {
            return (Verdict::NotMeasured, None, None);
        };
        let bound = match self.bound {
            Bound::Value(v) => v,
            Bound::Baseline(factor) => match baseline.and_then(|b| b.get(&self.metric)) {
                Some(b) => b * factor,
                None => return (Verdict::NoBaseline, Some(value), None),
            },
        };
        let verdict = if self.op.holds(value, bound) {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        (verdict, Some(value), Some(bound))
    }

    pub fn describe_bound(&self) -> String {
        match self.bound {
            Bound::Value(v) => format!("{} {}", self.op.text(), v),
            Bound::Baseline(f) => format!("{} baseline × {f}", self.op.text()),
        }
    }
}

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
pub fn parse_all(spec: &BTreeMap<String, Vec<String>>) -> Result<Vec<(String, Threshold)>, Vec<ThresholdError>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (scope, exprs) in spec {
        for e in exprs {
            match parse(e) {
                Ok(t) => out.push((scope.clone(), t)),
                Err(e) => errors.push(ThresholdError {
                    field: format!("thresholds.{scope}"),
                    message: e.to_string(),
                }),
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// A threshold that does not parse: the field it is in (`thresholds.<scope>`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThresholdError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_expressions_parse_in_their_units() {
        let t = parse("p99 < 250ms").unwrap();
        assert_eq!(
            (t.metric.as_str(), t.op, t.bound.clone()),
            ("p99", Op::Lt, Bound::Value(250.0))
        );
        assert_eq!(parse("p95<=1.5s").unwrap().bound, Bound::Value(1500.0));
        assert_eq!(parse("failure_rate < 0.1%").unwrap().bound, Bound::Value(0.001));
        assert_eq!(parse("failure_rate < 0.001").unwrap().bound, Bound::Value(0.001));
        assert_eq!(parse("blocked_queries.max == 0").unwrap().op, Op::Eq);
        assert_eq!(parse("post_load_cpu.mean < 2%").unwrap().bound, Bound::Value(2.0));
        assert_eq!(parse("rps > baseline * 0.85").unwrap().bound, Bound::Baseline(0.85));
        assert_eq!(parse("p50 <= baseline").unwrap().bound, Bound::Baseline(1.0));
    }

    #[test]
    fn resource_thresholds_parse_in_their_units_and_judge() {
        const MIB: f64 = 1024.0 * 1024.0;
        assert_eq!(
            parse("target_rss.settled < 256MiB").unwrap().bound,
            Bound::Value(256.0 * MIB)
        );
        assert_eq!(
            parse("target_rss.load_max < 1GiB").unwrap().bound,
            Bound::Value(1024.0 * MIB)
        );
        assert_eq!(
            parse("target_rss.settled < 512 KiB").unwrap().bound,
            Bound::Value(512.0 * 1024.0)
        );
        assert_eq!(parse("target_rss.settled < 100B").unwrap().bound, Bound::Value(100.0));
        assert_eq!(parse("target_rss.slope < 1MiB/min").unwrap().bound, Bound::Value(MIB));
        assert_eq!(parse("target_rss.slope <= 0").unwrap().bound, Bound::Value(0.0));
        assert_eq!(parse("target_fds.slope < 10/min").unwrap().bound, Bound::Value(10.0));
        assert_eq!(parse("target_fds.slope < 10").unwrap().bound, Bound::Value(10.0));
        assert_eq!(
            parse("target_fds.settled_growth < 5%").unwrap().bound,
            Bound::Value(0.05)
        );
        let cw = parse("close_wait.settled == 0").unwrap();
        assert_eq!((cw.op, cw.bound.clone()), (Op::Eq, Bound::Value(0.0)));
        for (text, says) in [
            ("target_rss.settled < 256MB", "a size"),
            ("target_rss.settled < 256", "a size"),
            ("target_rss.slope < 1MiB", "a size per minute"),
            ("target_fds.slope < 1/s", "plain number"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }

        let mut m = Metrics::default();
        m.set("close_wait.settled", Some(0.0));
        m.set("target_fds.settled_growth", Some(0.08));
        m.set("target_rss.slope", Some(0.5 * MIB));
        assert_eq!(cw.evaluate(&m, None).0, Verdict::Pass);
        let growth = parse("target_fds.settled_growth < 5%").unwrap();
        assert_eq!(growth.evaluate(&m, None).0, Verdict::Fail);
        assert_eq!(
            parse("target_rss.slope < 1MiB/min").unwrap().evaluate(&m, None).0,
            Verdict::Pass
        );
        assert_eq!(
            parse("target_rss.settled < 256MiB").unwrap().evaluate(&m, None).0,
            Verdict::NotMeasured
        );
    }

    #[test]
    fn a_renamed_metric_is_taken_by_its_old_name() {
        assert_eq!(parse("sse_sessions_left == 0").unwrap().metric, "mcp_sessions_left");
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (text, says) in [
            ("p99 250ms", "no comparison"),
            ("p98 < 250ms", "unknown metric \"p98\""),
            ("p99 < 5%", "does not fit this metric"),
            ("p99 < fast", "is not a number"),
            ("failure_rate < 1ms", "does not fit"),
            ("rps > baseline * x", "after \"baseline *\" give a number"),
            ("rps > baseline + 1", "write \"baseline\""),
            ("blocked_queries.max == 0%", "plain number"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn evaluation_compares_and_knows_what_it_cannot_judge() {
        let mut m = Metrics::default();
        m.set("p99", Some(200.0));
        m.set("rps", Some(80.0));
        m.set("blocked_queries.max", None);
        let mut base = Metrics::default();
        base.set("rps", Some(100.0));
        assert_eq!(parse("p99 < 250ms").unwrap().evaluate(&m, None).0, Verdict::Pass);
        assert_eq!(parse("p99 < 0.1s").unwrap().evaluate(&m, None).0, Verdict::Fail);
        assert_eq!(
            parse("blocked_queries.max == 0").unwrap().evaluate(&m, None).0,
            Verdict::NotMeasured
        );
        let rps = parse("rps > baseline * 0.85").unwrap();
        assert_eq!(rps.evaluate(&m, None).0, Verdict::NoBaseline);
        let (v, value, bound) = rps.evaluate(&m, Some(&base));
        assert_eq!((v, value, bound), (Verdict::Fail, Some(80.0), Some(85.0)));
    }
}
