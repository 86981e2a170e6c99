//! The gate's verdicts as a terminal table, Markdown (for a CI job summary) and JUnit XML (one test
//! case per check); and `compare`'s side-by-side table of runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::check::Check;
use super::verdict::{Outcome, StalePolicy};
use crate::data::Metrics;
use crate::data::Verdict;
use crate::data::metrics::{METRICS, Metric, MetricKind};
use crate::format::num;

/// A check's baseline or current figure, with its metric's unit.
fn shown(c: &Check, v: Option<f64>) -> String {
    v.map_or_else(|| num(None), |v| super::check::figure(&c.metric, v))
}

fn change(c: &Check) -> String {
    c.change.map_or("-".into(), |x| format!("{:+.1}%", x * 100.0))
}

pub fn table(scenario: &str, checks: &[Check], stale: StalePolicy) -> String {
    let mut out = String::new();
    let verdict = Outcome::of(checks);
    let _ = writeln!(out, "stampede gate — {scenario}: {}", verdict.headline(stale));
    let w = checks.iter().map(|c| c.name.len()).max().unwrap_or(10).max(6);
    let _ = writeln!(
        out,
        "{:<9} {:<w$}  {:>14} {:>14} {:>9} {:>20}  verdict",
        "kind", "check", "baseline", "current", "change", "allowed"
    );
    for c in checks {
        let _ = writeln!(
            out,
            "{:<9} {:<w$}  {:>14} {:>14} {:>9} {:>20}  {}",
            c.kind,
            c.name,
            shown(c, c.baseline),
            shown(c, c.current),
            change(c),
            c.allowed,
            c.verdict
        );
    }
    if verdict == Outcome::Stale && stale == StalePolicy::Warn {
        let faster: Vec<&str> = checks
            .iter()
            .filter(|c| c.verdict == Verdict::Stale)
            .map(|c| c.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "warning: faster than the baseline beyond the band ({}): consider re-recording it (stampede baseline); \
             --fail-on-stale makes this fail",
            faster.join(", ")
        );
    }
    out
}

pub fn markdown(scenario: &str, checks: &[Check], stale: StalePolicy) -> String {
    let mut out = String::new();
    let verdict = match (Outcome::of(checks), stale) {
        (Outcome::Pass, _) => "✅ pass",
        (Outcome::Regression, _) => "❌ regression",
        (Outcome::Stale, StalePolicy::Warn) => "✅ pass — faster than the baseline: consider re-recording it",
        (Outcome::Stale, StalePolicy::Fail) => "❌ faster than the baseline: stale, re-record it (--fail-on-stale)",
    };
    let _ = writeln!(out, "### stampede gate — `{scenario}`: {verdict}\n");
    let _ = writeln!(
        out,
        "| kind | check | baseline | current | change | allowed | verdict |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---|");
    for c in checks {
        let v = match c.verdict {
            Verdict::Fail => format!("**{}**", c.verdict),
            other => other.to_string(),
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {v} |",
            c.kind,
            c.name.replace('|', "\\|"),
            shown(c, c.baseline),
            shown(c, c.current),
            change(c),
            c.allowed.replace('|', "\\|")
        );
    }
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub fn junit(scenario: &str, checks: &[Check]) -> String {
    let failures = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    let skipped = checks
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::NotMeasured | Verdict::NoBaseline))
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"stampede gate\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
        checks.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">",
        xml_escape(scenario),
        checks.len()
    );
    for c in checks {
        let _ = write!(
            out,
            "    <testcase classname=\"stampede.gate.{}\" name=\"{}\"",
            c.kind,
            xml_escape(&c.name)
        );
        let detail = format!(
            "baseline {}, current {}, change {}, allowed {}",
            shown(c, c.baseline),
            shown(c, c.current),
            change(c),
            c.allowed
        );
        match c.verdict {
            Verdict::Pass => out.push_str("/>\n"),
            // A pass, with what the CI page should show about it.
            Verdict::Stale => {
                let _ = writeln!(
                    out,
                    ">\n      <system-out>{}</system-out>\n    </testcase>",
                    xml_escape(&format!("faster than the baseline, consider re-recording it: {detail}"))
                );
            }
            Verdict::Fail => {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml_escape(&format!("regression: {detail}")),
                    xml_escape(&detail)
                );
            }
            other => {
                let _ = writeln!(
                    out,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    xml_escape(&other.to_string())
                );
            }
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn cell(metric: &Metric, v: Option<f64>) -> String {
    match (metric.kind, v) {
        (MetricKind::Ratio, Some(r)) => format!("{:.3}%", r * 100.0),
        // Labelled "(MiB)".
        (MetricKind::Bytes, Some(b)) => crate::format::mib(b),
        (_, v) => num(v),
    }
}

/// The rows of `compare`: per figure, its label and each run's value, with the change against the first.
pub fn compare_rows(runs: &[BTreeMap<String, Metrics>]) -> Vec<Vec<String>> {
    let columns: Vec<Vec<&BTreeMap<String, Metrics>>> = runs.iter().map(|r| vec![r]).collect();
    spread_rows(&columns)
}

/// A column's figure over its runs: the median, and the lowest and highest when there are several.
fn spread(metric: &Metric, runs: &[&BTreeMap<String, Metrics>]) -> (Option<f64>, String) {
    let empty = Metrics::default();
    let mut values: Vec<f64> = (runs.iter())
        .filter_map(|r| r.get("all").unwrap_or(&empty).get(metric.name))
        .collect();
    values.sort_by(f64::total_cmp);
    let median = match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[n / 2]),
        n => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    };
    let mut text = cell(metric, median);
    if runs.len() > 1
        && let (Some(lo), Some(hi)) = (values.first(), values.last())
    {
        text.push_str(&format!(" ({}–{})", cell(metric, Some(*lo)), cell(metric, Some(*hi))));
        if values.len() < runs.len() {
            text.push_str(&format!(", {} of {} measured", values.len(), runs.len()));
        }
    }
    (median, text)
}

/// The rows of `compare` over columns of repeated runs: per figure, each column's median (with its
/// range over the column's runs), and the change of each median against the first column's.
pub fn spread_rows(columns: &[Vec<&BTreeMap<String, Metrics>>]) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (metric, label) in METRICS.iter().filter_map(|m| Some((m, m.label?))) {
        let mut row = vec![label.to_owned()];
        let mut first = None;
        for (i, runs) in columns.iter().enumerate() {
            let (median, mut text) = spread(metric, runs);
            if i == 0 {
                first = median;
            } else if let (Some(a), Some(b)) = (first, median)
                && a != 0.0
            {
                text.push_str(&format!(" ({:+.0}%)", (b - a) / a.abs() * 100.0));
            }
            row.push(text);
        }
        rows.push(row);
    }
    rows
}

/// Columns side by side (`labels[i]` names `columns[i]`, one run or repeats of one): each figure's
/// median (and range), with the change of each column against the first.
pub fn compare(labels: &[String], columns: &[Vec<&BTreeMap<String, Metrics>>], markdown: bool) -> String {
    let rows = spread_rows(columns);
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "| figure | {} |", labels.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(labels.len()));
        for r in &rows {
            let _ = writeln!(out, "| {} |", r.join(" | "));
        }
    } else {
        let widths: Vec<usize> = (0..=labels.len())
            .map(|c| {
                let head = if c == 0 { "figure".len() } else { labels[c - 1].len() };
                rows.iter().map(|r| r[c].len()).max().unwrap_or(0).max(head)
            })
            .collect();
        let _ = write!(out, "{:<w$}", "figure", w = widths[0]);
        for (i, l) in labels.iter().enumerate() {
            let _ = write!(out, "  {:>w$}", l, w = widths[i + 1]);
        }
        out.push('\n');
        for r in &rows {
            let _ = write!(out, "{:<w$}", r[0], w = widths[0]);
            for (i, c) in r[1..].iter().enumerate() {
                let _ = write!(out, "  {:>w$}", c, w = widths[i + 1]);
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::data::Metrics;

    fn run(failure_rate: f64, rps: Option<f64>) -> BTreeMap<String, Metrics> {
        let mut all = Metrics::default();
        all.set("failure_rate", Some(failure_rate));
        all.set("rps", rps);
        BTreeMap::from([("all".to_owned(), all)])
    }

    fn row<'a>(rows: &'a [Vec<String>], label: &str) -> &'a [String] {
        rows.iter().find(|r| r[0] == label).unwrap()
    }

    #[test]
    fn a_column_of_repeats_shows_its_median_and_range_and_the_change_is_of_medians() {
        let legacy = [run(0.0161, Some(300.0)), run(0.381, Some(200.0)), run(0.17, None)];
        let fixed = [run(0.0, Some(800.0))];
        let columns = vec![legacy.iter().collect(), fixed.iter().collect()];
        let rows = super::spread_rows(&columns);
        let rate = row(&rows, "failure rate");
        assert_eq!(rate[1], "17.000% (1.610%–38.100%)");
        assert_eq!(rate[2], "0.000% (-100%)");
        // Two of three runs measured it: the median of those two, and how many measured.
        let rps = row(&rows, "requests per second");
        assert_eq!(rps[1], "250 (200–300), 2 of 3 measured");
        assert_eq!(rps[2], "800 (+220%)");
        // One run per column reads as before.
        let single = super::compare_rows(&[run(0.5, None), run(0.25, None)]);
        assert_eq!(row(&single, "failure rate")[1..], ["50.000%", "25.000% (-50%)"]);
    }
}
