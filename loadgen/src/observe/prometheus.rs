//! A small parser for the Prometheus text exposition format: enough to read a gateway's counters and
//! gauges (`name{label="value",…} 1.5`), comments and blank lines skipped, escapes in label values
//! honoured, histograms read as their plain series.

use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parse a whole exposition; lines that do not parse are skipped (a scrape is best effort).
pub fn parse(text: &str) -> Vec<Series> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Series> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if rest.starts_with('{') {
        rest = &rest[1..];
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=')?;
            let key = rest[..eq].trim().to_owned();
            rest = rest[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break i,
                    c => value.push(c),
                }
            };
            labels.insert(key, value);
            rest = &rest[end + 1..];
        }
    }
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some(Series {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The sum of every series named `name` (over all label sets), if there is one.
pub fn sum(series: &[Series], name: &str) -> Option<f64> {
    let mut found = false;
    let total = series
        .iter()
        .filter(|s| s.name == name)
        .inspect(|_| found = true)
        .map(|s| s.value)
        .sum();
    found.then_some(total)
}

/// The value of `name` with label `key="value"`.
pub fn with_label(series: &[Series], name: &str, key: &str, value: &str) -> Option<f64> {
    series
        .iter()
        .find(|s| s.name == name && s.labels.get(key).map(String::as_str) == Some(value))
        .map(|s| s.value)
}

/// Every `name{key=…}` as label value → value.
pub fn by_label(series: &[Series], name: &str, key: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in series.iter().filter(|s| s.name == name) {
        if let Some(value) = s.labels.get(key) {
            // Series that differ in another label (`transport`) add up.
            *out.entry(value.clone()).or_insert(0.0) += s.value;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP lock_conflicts_total Requests refused with 409.
# TYPE lock_conflicts_total counter
lock_conflicts_total{entity="tool"} 12
lock_conflicts_total{entity="gateway"} 3
mcp_sessions_active 40
mcp_session_ends_total{transport="sse",reason="client_gone"} 7
mcp_session_ends_total{transport="streamable_http",reason="client_gone"} 2
weird{a="x\"y\\z",b="2"} 1.5e3 1700000000000
http_request_duration_seconds_bucket{route="/tools",le="+Inf"} 9
process_cpu_seconds_total 12.25
not a metric line
"#;

    #[test]
    fn parses_the_text_format() {
        let s = parse(TEXT);
        assert_eq!(sum(&s, "lock_conflicts_total"), Some(15.0));
        assert_eq!(with_label(&s, "lock_conflicts_total", "entity", "tool"), Some(12.0));
        assert_eq!(sum(&s, "mcp_sessions_active"), Some(40.0));
        assert_eq!(by_label(&s, "mcp_session_ends_total", "reason")["client_gone"], 9.0);
        let weird = s.iter().find(|x| x.name == "weird").unwrap();
        assert_eq!(weird.labels["a"], "x\"y\\z");
        assert_eq!(weird.value, 1500.0);
        assert_eq!(
            with_label(&s, "http_request_duration_seconds_bucket", "le", "+Inf"),
            Some(9.0)
        );
        assert_eq!(sum(&s, "process_cpu_seconds_total"), Some(12.25));
        assert_eq!(sum(&s, "absent"), None, "absent is not 0");
    }
}
