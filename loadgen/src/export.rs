//! `stampede export --csv`: a results file as the CSV files Locust writes, for spreadsheets and pandas.
//! `stats.csv` holds each action's totals and an `Aggregated` row, `stats_history.csv` each second of
//! each action (and of all together), `failures.csv` each action's failures by kind. Columns are
//! Locust's where stampede measures the same thing (times in milliseconds), plus `Expected Count` (an
//! outcome the scenario declared expected, such as a 409, is neither a success nor a failure). A figure
//! that was not measured is an empty cell, never 0.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use crate::data::Summary;
use crate::results::{Results, write_file_atomically};

const STATS: &str = "Type,Name,Request Count,Failure Count,Expected Count,Median Response Time,\
                     Average Response Time,Max Response Time,Requests/s,Failures/s,50%,90%,95%,99%,100%";
const HISTORY: &str = "Timestamp,Elapsed,Phase,User Count,Type,Name,Requests/s,Failures/s,50%,90%,95%,99%,100%,\
                       Total Request Count,Total Failure Count";

/// Write the three files into `dir` (created if missing), each atomically; answer their paths.
pub fn write_csv(r: &Results, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let files = [
        ("stats.csv", stats(r)),
        ("stats_history.csv", history(r)),
        ("failures.csv", failures(r)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        write_file_atomically(&path, text.as_bytes())?;
        written.push(path);
    }
    Ok(written)
}

fn stats(r: &Results) -> String {
    let mut out = format!("{STATS}\n");
    let seconds = r.load.seconds;
    let rows = r
        .actions
        .iter()
        .map(|a| (kind_of(r, &a.name), a.name.as_str(), &a.summary))
        .chain([("", "Aggregated", &r.totals)]);
    for (kind, name, s) in rows {
        // Locust counts a connection that could not be made as a failure; so does this file.
        let failed = s.failed + s.connect_errors;
        let failures_per_s = (seconds > 0.0).then(|| failed as f64 / seconds);
        let mut row = Row::new(&mut out);
        row.text(kind).text(name).int(s.count).int(failed).int(s.expected);
        row.num(s.p50_ms).num(s.mean_ms).num(s.max_ms);
        row.num(Some(s.rps)).num(failures_per_s);
        percentiles(&mut row, s);
        row.end();
    }
    out
}

fn history(r: &Results) -> String {
    let mut out = format!("{HISTORY}\n");
    let start = r
        .load
        .started_at
        .as_deref()
        .unwrap_or(&r.started_at)
        .parse::<humantime::Timestamp>()
        .ok()
        .map(std::time::SystemTime::from);
    let mut totals = vec![(0u64, 0u64); r.slots.len() + 1];
    for w in &r.series {
        // A window's length: one second, the last one of a run possibly less.
        let stamp = start.map(|s| {
            (s + Duration::from_secs(w.t))
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
        });
        let rows = w
            .actions
            .iter()
            .enumerate()
            .map(|(i, s)| (i, kind_of(r, &r.slots[i]), r.slots[i].as_str(), s))
            .chain([(r.slots.len(), "", "Aggregated", &w.all)]);
        for (i, kind, name, s) in rows {
            totals[i].0 += s.count;
            totals[i].1 += s.failed + s.connect_errors;
            let secs = if s.rps > 0.0 { s.count as f64 / s.rps } else { 1.0 };
            let mut row = Row::new(&mut out);
            match stamp {
                Some(t) => row.int(t.as_secs()),
                None => row.empty(),
            };
            row.int(w.t).text(w.phase.label()).int(w.users).text(kind).text(name);
            row.num(Some(s.rps))
                .num(Some((s.failed + s.connect_errors) as f64 / secs));
            percentiles(&mut row, s);
            row.int(totals[i].0).int(totals[i].1);
            row.end();
        }
    }
    out
}

fn failures(r: &Results) -> String {
    let mut out = String::from("Name,Kind,Occurrences\n");
    for a in &r.actions {
        for (kind, n) in &a.failures {
            let mut row = Row::new(&mut out);
            row.text(&a.name).text(kind.label()).int(*n);
            row.end();
        }
    }
    out
}

fn percentiles(row: &mut Row<'_>, s: &Summary) {
    row.num(s.p50_ms)
        .num(s.p90_ms)
        .num(s.p95_ms)
        .num(s.p99_ms)
        .num(s.max_ms);
}

/// The action kind of a slot (`http`, `rpc`, `sse`, `mcp`); empty for a sub-measurement.
fn kind_of<'a>(r: &'a Results, slot: &str) -> &'a str {
    r.actions
        .iter()
        .find(|a| a.name == slot)
        .and_then(|a| a.kind)
        .map_or("", |k| k.name())
}

/// One CSV line being written: fields separated by commas, text quoted when it must be (RFC 4180).
struct Row<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Row<'a> {
    fn new(out: &'a mut String) -> Row<'a> {
        Row { out, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    fn text(&mut self, s: &str) -> &mut Self {
        self.sep();
        if s.contains([',', '"', '\n', '\r']) {
            let _ = write!(self.out, "\"{}\"", s.replace('"', "\"\""));
        } else {
            self.out.push_str(s);
        }
        self
    }

    fn int(&mut self, n: u64) -> &mut Self {
        self.sep();
        let _ = write!(self.out, "{n}");
        self
    }

    /// A measured figure to three decimals; not measured: an empty cell.
    fn num(&mut self, v: Option<f64>) -> &mut Self {
        self.sep();
        if let Some(v) = v.filter(|v| v.is_finite()) {
            let _ = write!(self.out, "{v:.3}");
        }
        self
    }

    fn empty(&mut self) -> &mut Self {
        self.sep();
        self
    }

    fn end(self) {
        self.out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_quoted_only_when_it_must_be() {
        let mut out = String::new();
        let mut row = Row::new(&mut out);
        row.text("GET /tools?limit=5,6")
            .text("plain")
            .text("say \"hi\"")
            .num(None)
            .num(Some(1.5));
        row.end();
        assert_eq!(out, "\"GET /tools?limit=5,6\",plain,\"say \"\"hi\"\"\",,1.500\n");
    }
}
