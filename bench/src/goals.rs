//! What the bench is held to, apart from what it measures: each goal's bar as data, and the table that
//! sets the measurements against them.

use crate::report::{BenchResults, opt};

/// A goal's bar: how it reads, and whether a measured value clears it.
pub struct Bar {
    pub text: &'static str,
    pub holds: fn(f64) -> bool,
}

/// Every REST read's rate at the lowest concurrency, as a share of the hello server's.
pub const REST_READ_SHARE: Bar = Bar {
    text: "≥ 25 %",
    holds: |share| share >= 0.25,
};
/// Every REST read's p99 at the highest concurrency, without failures.
pub const REST_READ_P99_MS: Bar = Bar {
    text: "< 1 s",
    holds: |ms| ms < 1000.0,
};
/// The generator's memory per idle stream.
pub const IDLE_STREAM_BYTES: Bar = Bar {
    text: "< 10 KiB",
    holds: |bytes| bytes < 10.0 * 1024.0,
};
/// The generator's peak RSS in mixed-4000.
pub const MIXED_PEAK_RSS_BYTES: Bar = Bar {
    text: "≤ 96 MiB",
    holds: |bytes| bytes <= f64::from(96u32 << 20),
};
/// Requests per generator CPU-second, against wrk's and oha's.
pub const VS_WRK: Bar = Bar {
    text: "≥ 1.1×",
    holds: |ratio| ratio >= 1.1,
};
pub const VS_OHA: Bar = Bar {
    text: "≥ 1.5×",
    holds: |ratio| ratio >= 1.5,
};
/// A figure with no bar: it is met by being measured.
pub const MEASURED: Bar = Bar {
    text: "measured",
    holds: |_| true,
};

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

fn is_rest_read(endpoint: &str) -> bool {
    endpoint.starts_with("GET /") && endpoint != "GET /"
}

/// Each goal against what this bench measured, as a table of its own.
pub fn table(b: &BenchResults, out: &mut String) {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |goal: String, measured: String, bar: &Bar, value: Option<f64>| {
        rows.push(vec![
            goal,
            measured,
            bar.text.to_owned(),
            verdict(value.map(bar.holds)).to_owned(),
        ]);
    };
    let backends: Vec<&str> = b
        .targets
        .iter()
        .filter(|t| t.target.starts_with("gateway"))
        .map(|t| t.target.as_str())
        .fold(Vec::new(), |mut v, t| {
            if !v.contains(&t) {
                v.push(t);
            }
            v
        });
    for backend in backends {
        let reads = || {
            b.targets
                .iter()
                .filter(move |t| t.target == backend && is_rest_read(&t.endpoint))
        };
        if let Some(least) = reads().map(|t| t.connections).min() {
            let ceiling = b
                .targets
                .iter()
                .find(|t| t.target.starts_with("hello") && t.connections == least);
            let worst = reads()
                .filter(|t| t.connections == least)
                .min_by(|a, b| a.rps.total_cmp(&b.rps));
            match (ceiling, worst) {
                (Some(c), Some(w)) => {
                    let share = w.rps / c.rps;
                    row(
                        format!("{backend}: every REST read at {least} connections, share of the hello ceiling"),
                        format!(
                            "{:.0} % at the lowest ({}: {:.0} of {:.0} req/s)",
                            share * 100.0,
                            w.endpoint,
                            w.rps,
                            c.rps
                        ),
                        &REST_READ_SHARE,
                        Some(share),
                    );
                }
                _ => row(
                    format!("{backend}: REST reads vs the ceiling"),
                    "not measured".into(),
                    &REST_READ_SHARE,
                    None,
                ),
            }
        }
        if let Some(most) = reads().map(|t| t.connections).max() {
            let worst = reads().filter(|t| t.connections == most).max_by(|a, b| {
                a.p99_ms
                    .unwrap_or(f64::INFINITY)
                    .total_cmp(&b.p99_ms.unwrap_or(f64::INFINITY))
            });
            if let Some(w) = worst {
                row(
                    format!("{backend}: p99 of every REST read at {most} connections"),
                    format!(
                        "{} at the highest ({}), {} failed",
                        opt(w.p99_ms, |v| format!("{v:.0} ms")),
                        w.endpoint,
                        w.failures
                    ),
                    &REST_READ_P99_MS,
                    // A failed read is not a fast one.
                    w.p99_ms.map(|p| if w.failures == 0 { p } else { f64::INFINITY }),
                );
            }
        }
    }
    for transport in ["SSE", "Streamable HTTP"] {
        let slope = b
            .streams
            .iter()
            .filter(|s| s.transport == transport)
            .filter_map(|s| s.bytes_per_stream)
            .max_by(f64::total_cmp);
        row(
            format!("generator per idle {transport} stream"),
            opt(slope, |v| format!("{:.1} KiB", v / 1024.0)),
            &IDLE_STREAM_BYTES,
            slope,
        );
    }
    let rss = b.mixed.as_ref().and_then(|m| m.peak_rss_bytes);
    row(
        "generator peak RSS in mixed-4000".into(),
        match &b.mixed {
            Some(m) => format!(
                "{} ({:.0} users, {} streams open at the peak)",
                opt(rss.map(|r| r as f64), |v| format!("{:.0} MiB", v / 1048576.0)),
                m.users,
                m.peak_streams_open
            ),
            None => "not measured".into(),
        },
        &MIXED_PEAK_RSS_BYTES,
        rss.map(|r| r as f64),
    );
    for r in &b.ratios {
        row(
            format!(
                "requests per generator CPU-second at {} connections, ÷ wrk",
                r.connections
            ),
            opt(r.vs_wrk, |v| format!("{v:.2}×")),
            &VS_WRK,
            r.vs_wrk,
        );
        row(
            format!(
                "requests per generator CPU-second at {} connections, ÷ oha",
                r.connections
            ),
            opt(r.vs_oha, |v| format!("{v:.2}×")),
            &VS_OHA,
            r.vs_oha,
        );
    }
    for w in b.targets.iter().filter(|t| t.endpoint.starts_with("POST")) {
        row(
            format!(
                "{}: {} at {} connections, CPU per request",
                w.target, w.endpoint, w.connections
            ),
            format!(
                "{}, {} statements per request",
                opt(w.cpu_per_request_s, |v| format!("{:.0} µs", v * 1e6)),
                opt(w.statements_per_request, |v| format!("{v:.1}"))
            ),
            &MEASURED,
            w.cpu_per_request_s,
        );
    }
    crate::report::table(out, &["goal", "measured", "target", ""], "llll", rows);
}
