//! `stampede URL`: one endpoint loaded without a scenario file, as oha and hey users type it. The
//! flags become a scenario (one `http` action, the URL's server as the target, a closed load of `-c`
//! users or an open one of `-q` arrivals a second) checked by the same planner and run by the same
//! engine, so its results file is a run's like any other: `gate`, `report`, `export` and the dashboard
//! read it.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::CliError;
use crate::lang::{format_duration, parse_duration};
use crate::scenario::{self, Scenario};

/// How long a run of `-n` requests may last at most, unless `-z` says otherwise: every run ends by
/// itself.
const REQUESTS_CAP: Duration = Duration::from_secs(600);
/// oha's default when neither a count nor a duration is given.
const DEFAULT_REQUESTS: u64 = 200;

/// The ad-hoc form's flags (`stampede URL …`); oha's and hey's letters where they have one.
#[derive(Debug, Clone, clap::Args)]
pub struct AdHocArgs {
    /// The URL to load (http:// or https://), e.g. http://127.0.0.1:4444/health.
    #[arg(value_name = "URL", value_parser = parse_url)]
    pub url: Option<AdHocUrl>,
    /// Concurrent users, each on its own connection; with -q, the most requests in flight.
    #[arg(short = 'c', long = "connections", value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// Run this long, e.g. 10s (with -n: at most this long). Requests still in flight then are
    /// aborted and counted as such (oha's "aborted due to deadline"), so the run takes this long.
    #[arg(short = 'z', long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Requests in all; the run ends when they are done, after 10 minutes at most unless -z says
    /// otherwise [default: 200 when -z is not given either].
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// Open model: this many requests a second, whatever the target's speed (latency counts from each
    /// request's intended start, so a slow target's queueing shows).
    #[arg(short = 'q', long, value_name = "PER_SECOND", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// The HTTP method.
    #[arg(short = 'm', long, default_value = "GET")]
    pub method: String,
    /// A header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// The request body, sent as written (content-type application/json unless -H sets one).
    #[arg(short = 'd', long = "body", value_name = "TEXT", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// The request body, read from a file.
    #[arg(short = 'D', long = "body-file", value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Load threads, the event loops the users run on (wrk's -t, oha's --worker-threads)
    /// [default: one per core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Per-request timeout.
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// https: trust the CA certificates of this PEM file instead of the platform's.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub cacert: Option<PathBuf>,
    /// https: take any certificate (a self-signed test server): encrypted, not verified.
    #[arg(short = 'k', long)]
    pub insecure: bool,
    /// Print the summary as JSON on stdout (schemas/summary.schema.json) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// A threshold on the run, e.g. "p99 < 50ms" or "failure_rate < 1%" (repeatable; a scenario's
    /// grammar): exit 99 when one fails.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Write the results file here (the ad-hoc form writes none otherwise), for gate, report, export
    /// and `stampede-tui replay`.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Serve the live feed and Prometheus metrics here (GET /snapshot, /live, /metrics).
    #[arg(long, value_name = "ADDR")]
    pub live: Option<std::net::SocketAddr>,
    /// No progress line.
    #[arg(long)]
    pub quiet: bool,
}

/// The URL split as the scenario wants it: the server (`http://host:port`) and the request target.
#[derive(Debug, Clone)]
pub struct AdHocUrl {
    pub base: String,
    pub path_and_query: String,
    pub text: String,
}

fn parse_url(text: &str) -> Result<AdHocUrl, String> {
    if !text.contains("://") {
        return Err(format!(
            "{text:?} has no scheme: add http:// or https:// (e.g. http://{text})"
        ));
    }
    let url = reqwest::Url::parse(text).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    let scheme = url.scheme();
    if !matches!(scheme, "http" | "https") {
        return Err(format!("{text}: {scheme}:// is neither http:// nor https://"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{text}: no host"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{text}: credentials in the URL are not sent; use -H 'authorization: …'"
        ));
    }
    let mut path_and_query = url.path().to_owned();
    if let Some(q) = url.query() {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    Ok(AdHocUrl {
        // The port only when it is not the scheme's: `Host` carries what the user typed, as oha's does
        // (name-based virtual hosts and CDNs route on it).
        base: match url.port() {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        },
        path_and_query,
        text: text.to_owned(),
    })
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not a header: write it as 'Name: value'"))?;
    crate::actions::header(name, value)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| format!("{text:?} is not a rate: give requests a second, more than 0"))
}

impl AdHocArgs {
    /// The scenario the flags describe, checked as a file's would be; a mistake names its flag.
    pub fn scenario(&self) -> Result<Scenario, CliError> {
        let url = self
            .url
            .as_ref()
            .ok_or_else(|| CliError::Usage("stampede: give a URL or a command (stampede --help)".into()))?;
        let body = match (&self.body, &self.body_file) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(f)) => Some(
                std::fs::read_to_string(f)
                    .map_err(|e| CliError::Usage(format!("stampede: --body-file {}: cannot read: {e}", f.display())))?,
            ),
            (None, None) => None,
        };
        let text = toml::to_string(&self.spec(url, body))
            .map_err(|e| CliError::Failed(format!("stampede: the ad-hoc scenario: {e}")))?;
        scenario::parse("the command line", &text, "adhoc", &[]).map_err(|errors| {
            let lines: Vec<String> = errors
                .0
                .iter()
                .map(|e| format!("stampede: {}: {}", flag_of(&e.field), e.message))
                .collect();
            CliError::Usage(lines.join("\n"))
        })
    }

    /// The scenario as TOML values: one `http` action on the URL, no setup, no observers.
    fn spec(&self, url: &AdHocUrl, body: Option<String>) -> toml::Table {
        use toml::Value;
        let mut action = toml::Table::new();
        action.insert("kind".into(), "http".into());
        action.insert("method".into(), self.method.clone().into());
        // The URL is taken as written: braces are not template variables here.
        action.insert(
            "path".into(),
            url.path_and_query.replace('{', "{{").replace('}', "}}").into(),
        );
        if !self.headers.is_empty() {
            let headers: toml::Table = self
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), Value::String(v.clone())))
                .collect();
            action.insert("headers".into(), headers.into());
        }
        if let Some(b) = body {
            action.insert("body".into(), b.into());
        }
        let mut load = toml::Table::new();
        let requests = match (self.requests, self.duration) {
            (None, None) => Some(DEFAULT_REQUESTS),
            (n, _) => n,
        };
        let duration = self.duration.unwrap_or(REQUESTS_CAP);
        load.insert("duration".into(), format_duration(duration).into());
        // As oha: the deadline is the deadline; what is in flight then is aborted, and counted.
        load.insert("graceful_stop".into(), "0s".into());
        if let Some(n) = requests {
            load.insert(
                "iterations".into(),
                Value::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
            );
        }
        match self.rate {
            Some(rate) => {
                load.insert("model".into(), "open".into());
                load.insert("rate".into(), rate.into());
                load.insert("max_in_flight".into(), i64::from(self.connections).into());
            }
            None => {
                load.insert("users".into(), i64::from(self.connections).into());
            }
        }
        if let Some(n) = self.threads {
            load.insert("threads".into(), i64::from(n).into());
        }
        let mut target = toml::Table::new();
        target.insert("url".into(), url.base.clone().into());
        target.insert("timeout".into(), format_duration(self.timeout).into());
        if let Some(file) = &self.cacert {
            target.insert("cacert".into(), file.display().to_string().into());
        }
        if self.insecure {
            target.insert("insecure".into(), true.into());
        }
        let mut observe = toml::Table::new();
        observe.insert("post_load".into(), "0s".into());
        observe.insert("settle".into(), "0s".into());
        observe.insert("metrics".into(), "".into());
        observe.insert("ports".into(), Value::Array(Vec::new()));
        let mut spec = toml::Table::new();
        spec.insert("name".into(), "adhoc".into());
        spec.insert("description".into(), format!("{} {}", self.method, url.text).into());
        spec.insert("target".into(), target.into());
        spec.insert("load".into(), load.into());
        spec.insert("observe".into(), observe.into());
        spec.insert("actions".into(), Value::Array(vec![action.into()]));
        if !self.thresholds.is_empty() {
            let mut thresholds = toml::Table::new();
            thresholds.insert(
                "all".into(),
                Value::Array(self.thresholds.iter().cloned().map(Value::String).collect()),
            );
            spec.insert("thresholds".into(), thresholds.into());
        }
        spec
    }
}

/// The flag a scenario field came from, for a message about it.
fn flag_of(field: &str) -> &str {
    const FLAGS: [(&str, &str); 9] = [
        ("thresholds", "--threshold"),
        ("actions[0].method", "-m"),
        ("actions[0].headers", "-H"),
        ("actions[0].body", "-d"),
        ("actions[0].path", "URL"),
        ("target.url", "URL"),
        ("target.timeout", "--timeout"),
        ("load.users", "-c"),
        ("load.rate", "-q"),
    ];
    FLAGS
        .iter()
        .find(|(prefix, _)| field.starts_with(prefix))
        .map_or(field, |(_, flag)| flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_server_and_request_target() {
        let u = parse_url("http://127.0.0.1:4444/tools?limit=5").unwrap();
        assert_eq!(u.base, "http://127.0.0.1:4444");
        assert_eq!(u.path_and_query, "/tools?limit=5");
        let u = parse_url("http://localhost").unwrap();
        assert_eq!((u.base.as_str(), u.path_and_query.as_str()), ("http://localhost", "/"));
        let u = parse_url("https://[::1]/x").unwrap();
        assert_eq!(u.base, "https://[::1]");
        assert_eq!(parse_url("https://h:8443/").unwrap().base, "https://h:8443");
        assert!(
            parse_url("127.0.0.1:4444/health")
                .unwrap_err()
                .contains("add http:// or https://")
        );
        for bad in ["127.0.0.1:4444", "ftp://x/", "http://u:p@h/", "not a url"] {
            assert!(parse_url(bad).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn headers_need_a_colon_and_a_name() {
        assert_eq!(
            parse_header("X-Api-Key: abc").unwrap(),
            ("X-Api-Key".to_owned(), "abc".to_owned())
        );
        assert!(parse_header("no colon").unwrap_err().contains("Name: value"));
        assert!(parse_header(": value").is_err());
        assert!(parse_header("Host: other").is_err());
    }
}
