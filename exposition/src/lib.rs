//! What every stampede server shares — the reference gateway, `stampede upstream`, a run's `--live`
//! endpoint: the Prometheus text format (0.0.4) it writes on scrape, and the signal that stops it.
//!
//! [`Writer`] appends to a `String` the caller keeps, so a scrape allocates one buffer; label values
//! are escaped as the format asks, numbers written as Prometheus reads them (`+Inf`, `NaN`).

use std::fmt::Write as _;

/// A metric family's type (`# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
            Type::Histogram => "histogram",
        }
    }
}

/// Writes families and their samples to `out`.
pub struct Writer<'a> {
    out: &'a mut String,
    /// Labels every sample carries (`run="…",scenario="…"`), escaped once.
    base: String,
    /// A timestamp (Unix milliseconds) after every value.
    stamp: Option<String>,
}

impl<'a> Writer<'a> {
    pub fn new(out: &'a mut String) -> Writer<'a> {
        Writer {
            out,
            base: String::new(),
            stamp: None,
        }
    }

    /// Every sample from here on carries these labels first.
    pub fn with_labels(mut self, labels: &[(&str, &str)]) -> Writer<'a> {
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.base.push(',');
            }
            label(&mut self.base, k, v);
        }
        self
    }

    /// Every sample from here on is stamped with this time.
    pub fn with_timestamp_ms(mut self, unix_ms: u64) -> Writer<'a> {
        self.stamp = Some(unix_ms.to_string());
        self
    }

    /// `# HELP` and `# TYPE` of a family; its samples follow.
    pub fn family(&mut self, name: &str, kind: Type, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {}", kind.as_str());
    }

    /// One sample: `name{base,labels} value [stamp]`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.sample_le(name, labels, None, value);
    }

    /// A sample with labels and, for a histogram bucket, `le` last.
    fn sample_le(&mut self, name: &str, labels: &[(&str, &str)], le: Option<&str>, value: f64) {
        self.out.push_str(name);
        if !self.base.is_empty() || !labels.is_empty() || le.is_some() {
            self.out.push('{');
            self.out.push_str(&self.base);
            let mut first = self.base.is_empty();
            for (k, v) in labels.iter().chain(le.map(|le| ("le", le)).as_ref()) {
                if !first {
                    self.out.push(',');
                }
                first = false;
                label(self.out, k, v);
            }
            self.out.push('}');
        }
        self.out.push(' ');
        number(self.out, value);
        if let Some(stamp) = &self.stamp {
            self.out.push(' ');
            self.out.push_str(stamp);
        }
        self.out.push('\n');
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, kind: Type, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    /// A histogram's samples: `_bucket` per bound (`cumulative[i]` requests at most `bounds[i]`), the
    /// `+Inf` bucket (`count`), `_sum` and `_count`, each with `labels`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
        cumulative: &[u64],
        count: u64,
        sum: f64,
    ) {
        let bucket = format!("{name}_bucket");
        let mut le = String::new();
        for (bound, n) in bounds.iter().zip(cumulative) {
            le.clear();
            number(&mut le, *bound);
            self.sample_le(&bucket, labels, Some(&le), *n as f64);
        }
        self.sample_le(&bucket, labels, Some("+Inf"), count as f64);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }
}

/// `key="value"`, the value escaped as the format asks (backslash, quote, line feed).
pub fn label(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A value as Prometheus reads it.
pub fn number(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Resolves at the first SIGINT or SIGTERM: a server drains and stops, a run (or the dashboard's) stops
/// its load and still writes its results.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_carry_base_labels_escaped_values_and_stamps() {
        let mut out = String::new();
        let mut w = Writer::new(&mut out)
            .with_labels(&[("run", "a\"b")])
            .with_timestamp_ms(7);
        w.family("x_total", Type::Counter, "Xs.");
        w.sample("x_total", &[("k", "v\\\n")], 3.0);
        assert_eq!(
            out,
            "# HELP x_total Xs.\n# TYPE x_total counter\nx_total{run=\"a\\\"b\",k=\"v\\\\\\n\"} 3 7\n"
        );
    }

    #[test]
    fn a_sample_without_labels_has_no_braces_and_numbers_read_as_prometheus_reads_them() {
        let mut out = String::new();
        let mut w = Writer::new(&mut out);
        w.sample("a", &[], f64::INFINITY);
        w.sample("b", &[], 0.25);
        w.sample("c", &[], f64::NAN);
        assert_eq!(out, "a +Inf\nb 0.25\nc NaN\n");
    }

    #[test]
    fn a_histogram_has_cumulative_buckets_inf_sum_and_count() {
        let mut out = String::new();
        Writer::new(&mut out).histogram("d", &[("route", "/t")], &[0.5, 1.0], &[1, 2], 3, 4.5);
        assert_eq!(
            out,
            "d_bucket{route=\"/t\",le=\"0.5\"} 1\nd_bucket{route=\"/t\",le=\"1\"} 2\n\
             d_bucket{route=\"/t\",le=\"+Inf\"} 3\nd_sum{route=\"/t\"} 4.5\nd_count{route=\"/t\"} 3\n"
        );
    }
}
