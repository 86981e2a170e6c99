//! `--live ADDR` serves `GET /metrics`, and a real Prometheus (Debian's package, started here on a free
//! port with a generated config) scrapes a short run: its PromQL request rate agrees with the results
//! file within 10 %. Skips when prometheus is not installed, unless STAMPEDE_REQUIRE_PROMETHEUS=1 (CI).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use testkit::{free_port, prometheus_binary};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn query(http: &reqwest::Client, prom: &str, promql: &str, at: f64) -> Vec<Value> {
    let answer: Value = http
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", promql), ("time", &format!("{at:.3}"))])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["status"], "success", "{promql}: {answer}");
    answer["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// When the load started, as the results file says (RFC 3339).
fn summary_load_start(results: &std::path::Path) -> String {
    let r: Value = serde_json::from_slice(&std::fs::read(results).unwrap()).unwrap();
    r["load"]["started_at"].as_str().unwrap().to_owned()
}

/// The results' own rate over the one-second windows `seconds` of the load (the series' `t`).
fn series_rate(results: &std::path::Path, seconds: std::ops::RangeInclusive<u64>) -> f64 {
    let r: Value = serde_json::from_slice(&std::fs::read(results).unwrap()).unwrap();
    let windows = seconds.clone().count() as f64;
    let counted: u64 = r["series"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["t"].as_u64().is_some_and(|t| seconds.contains(&t)))
        .map(|w| w["all"]["count"].as_u64().unwrap())
        .sum();
    counted as f64 / windows
}

fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_run_and_its_rate_matches_the_results() {
    let Some(prometheus) = prometheus_binary() else {
        eprintln!("skipped: prometheus is not installed");
        return;
    };
    let gw = testkit::spawn_gateway("s", &[]);
    let dir = tempfile::tempdir().unwrap();
    let live = format!("127.0.0.1:{}", free_port());
    let web = format!("127.0.0.1:{}", free_port());
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n  - job_name: stampede\n    static_configs:\n      - targets: ['{live}']\n"
        ),
    )
    .unwrap();
    let _prom = Killed(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus"),
    );
    let prom = format!("http://{web}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("{prom}/-/ready"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "prometheus not ready: {}",
            std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An open load of 200 a second for 16 s: a rate Prometheus should see as the results file does.
    let results = dir.path().join("run.json");
    let run = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            &format!("{}/health", gw.url),
            "-q",
            "200",
            "-c",
            "20",
            "-z",
            "16s",
            "--quiet",
            "--json",
        ])
        .args(["--live", &live, "-o"])
        .arg(&results)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // While it runs: the exposition itself, as Prometheus reads it.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let text = http
        .get(format!("http://{live}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for family in [
        "# TYPE stampede_requests_total counter",
        "# TYPE stampede_request_duration_seconds histogram",
        "stampede_request_duration_seconds_bucket{run=\"adhoc-",
        "le=\"+Inf\"",
        "stampede_users{",
        "stampede_run_finished{",
    ] {
        assert!(text.contains(family), "{family} in\n{text}");
    }
    assert!(
        !text.contains("stampede_target_cpu_percent"),
        "not measured is absent, not 0:\n{text}"
    );

    let out = tokio::task::spawn_blocking(move || run.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["requests_per_second"].as_f64().unwrap() > 150.0, "{summary}");

    // Late in the run, over 6 s: a window that Prometheus, started just before the run, has scraped
    // throughout. Its samples are the snapshots of seconds 9 to 14 (each dated at its tick), so its rate
    // is the count of seconds 10 to 14 — set against the results' count of those same seconds: on a
    // busy machine an open load's rate is not even, and the run's average is not what 6 s of it saw.
    let load_start = std::time::SystemTime::from(summary_load_start(&results).parse::<humantime::Timestamp>().unwrap())
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let at = load_start + 14.5;
    assert!(at < now_s());
    let results_rps = series_rate(&results, 10..=14);
    let rate = query(
        &http,
        &prom,
        "sum(rate(stampede_requests_total{scenario=\"adhoc\"}[6s]))",
        at,
    )
    .await;
    let prom_rps: f64 = rate
        .first()
        .and_then(|r| r["value"][1].as_str())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no rate at {at}: {rate:?}"));
    let off = (prom_rps - results_rps).abs() / results_rps;
    eprintln!(
        "PromQL rate {prom_rps:.1}/s, results file {results_rps:.1}/s over the same seconds: {:.1} % apart",
        off * 100.0
    );
    assert!(
        off < 0.10,
        "PromQL {prom_rps:.1}/s against the results' {results_rps:.1}/s over the same seconds"
    );

    // The histogram answers a quantile, and each series names the run.
    let p99 = query(
        &http,
        &prom,
        "histogram_quantile(0.99, sum by (le) (rate(stampede_request_duration_seconds_bucket[6s])))",
        at,
    )
    .await;
    let p99: f64 = p99[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(p99 > 0.0 && p99 < 1.0, "p99 {p99} s");
    let runs = query(&http, &prom, "count by (run) (stampede_run_elapsed_seconds)", at).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert!(
        runs[0]["metric"]["run"].as_str().unwrap().starts_with("adhoc-"),
        "{runs:?}"
    );
}
