//! `stampede URL …`, the ad-hoc form, end to end against a spawned reference gateway: what it sends
//! (method, headers, body), how its load ends (`-n`, `-z`, `-q`), what it prints (`--json` against
//! its schema) and writes (a results file the other commands read), and how it refuses bad input (one
//! line, exit 2).

use std::process::{Command, Output};

use serde_json::Value;

fn stampede(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(args)
        .output()
        .unwrap()
}

/// A results path nobody reads, in a directory of its own.
fn scratch() -> String {
    let dir = tempfile::tempdir().unwrap().keep();
    dir.join("run.json").to_string_lossy().into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `stampede ARGS --json --quiet -o <scratch>`, its summary checked against its schema.
fn json_run(args: &[&str]) -> Value {
    let out = scratch();
    let mut all = args.to_vec();
    all.extend(["--json", "--quiet", "-o", &out]);
    summary(&stampede(&all))
}

/// `--json`'s output, checked against schemas/summary.schema.json.
fn summary(out: &Output) -> Value {
    assert!(out.status.success(), "exit {:?}: {}", out.status.code(), stderr(out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let schema: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../schemas/summary.schema.json"
    )))
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let problems: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "the summary violates its schema:\n{}",
        problems.join("\n")
    );
    json
}

#[test]
fn help_lists_the_ad_hoc_form_first() {
    let out = stampede(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let usage = help.find("Usage: stampede [OPTIONS] <URL>").expect("the ad-hoc usage");
    let commands = help.find("stampede <COMMAND>").expect("the commands' usage");
    assert!(usage < commands, "{help}");
    let url_section = help
        .find("One URL, no scenario file:")
        .expect("the ad-hoc flags' section");
    assert!(url_section < help.find("\nCommands:").unwrap(), "{help}");
    for flag in [
        "-c, --connections",
        "-z, --duration",
        "-n, --requests",
        "-q, --rate",
        "-H, --header",
        "--json",
    ] {
        assert!(help.contains(flag), "{flag} in\n{help}");
    }
}

#[test]
fn bad_input_gets_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-body.json");
    let cases: [(&[&str], &str); 7] = [
        (&["ftp://127.0.0.1/"], "is neither http:// nor https://"),
        (&["127.0.0.1:4444/health"], "add http:// or https://"),
        (&["http://[::1"], "is not a URL"),
        (
            &["http://127.0.0.1:9/", "--no-such-flag"],
            "unexpected argument '--no-such-flag'",
        ),
        (
            &["http://127.0.0.1:9/", "-H", "X-Api-Key abc"],
            "write it as 'Name: value'",
        ),
        (
            &["http://127.0.0.1:9/", "-D", missing.to_str().unwrap()],
            "no-such-body.json: cannot read",
        ),
        (&["http://127.0.0.1:9/", "--threshold", "p99 <"], "--threshold"),
    ];
    for (args, says) in cases {
        let out = stampede(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line, not {err:?}");
        assert!(err.contains(says), "{args:?}: {err:?} says {says:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn a_server_nobody_listens_on_is_said_at_once() {
    // A port just freed: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let out = stampede(&[&format!("http://127.0.0.1:{port}/health"), "-n", "100", "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot connect to"), "{}", stderr(&out));
    assert!(started.elapsed().as_secs() < 10);
}

#[test]
fn a_count_of_requests_is_run_exactly_and_read_by_the_other_commands() {
    let gw = testkit::spawn_gateway("s", &[]);
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("run.json");
    let out = stampede(&[
        &format!("{}/health", gw.url),
        "-n",
        "300",
        "-c",
        "4",
        "--json",
        "--quiet",
        "-o",
        results.to_str().unwrap(),
    ]);
    let s = summary(&out);
    assert_eq!(s["requests"], 300, "{s}");
    assert_eq!(s["ok"], 300, "{s}");
    assert_eq!(s["statuses"]["200"], 300, "{s}");
    assert_eq!(s["complete"], true);
    assert!(s["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    // It ends when the requests are done, not at a tick or at the cap.
    assert!(s["load_seconds"].as_f64().unwrap() < 5.0, "{s}");
    assert_eq!(s["results_file"], results.to_str().unwrap());

    // A results file like a scenario's: the CSV export reads it.
    let csv = dir.path().join("csv");
    let out = stampede(&["export", results.to_str().unwrap(), "--csv", csv.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stats = std::fs::read_to_string(csv.join("stats.csv")).unwrap();
    let mut lines = stats.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("Type,Name,Request Count,Failure Count,")
    );
    assert!(
        lines.next().unwrap().starts_with("http,GET /health,300,0,0,"),
        "{stats}"
    );
    assert!(lines.next().unwrap().starts_with(",Aggregated,300,0,0,"), "{stats}");
    let history = std::fs::read_to_string(csv.join("stats_history.csv")).unwrap();
    let total: u64 = history
        .lines()
        .skip(1)
        .filter(|l| l.contains(",GET /health,"))
        .map(|l| l.split(',').nth(13).unwrap().parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert_eq!(total, 300, "the last Total Request Count:\n{history}");
}

#[test]
fn method_headers_and_body_are_sent_as_given() {
    let gw = testkit::spawn_gateway("s", &[]);
    let token = stampede_loadgen::target::mint("s").unwrap();
    let rpc = format!("{}/rpc", gw.url);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let auth = format!("Authorization: Bearer {token}");
    // With the header and the body: the gateway answers 200.
    let with = json_run(&[&rpc, "-m", "POST", "-H", &auth, "-d", body, "-n", "20", "-c", "2"]);
    assert_eq!(with["statuses"]["200"], 20, "{with}");
    // Without the header: 401, a failed status. Without the body: the gateway refuses it as bad JSON.
    let without = json_run(&[&rpc, "-m", "POST", "-d", body, "-n", "5", "-c", "1"]);
    assert_eq!(without["statuses"]["401"], 5, "{without}");
    assert_eq!(without["failures"]["status"], 5, "{without}");
    let empty = json_run(&[&rpc, "-m", "POST", "-H", &auth, "-n", "5", "-c", "1"]);
    assert_eq!(empty["ok"], 0, "an empty body is not a JSON-RPC request: {empty}");
    // The body from a file, with its own content-type.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.json");
    std::fs::write(&file, body).unwrap();
    let from_file = json_run(&[
        &rpc,
        "-m",
        "POST",
        "-H",
        &auth,
        "-H",
        "content-type: application/json",
        "-D",
        file.to_str().unwrap(),
        "-n",
        "5",
        "-c",
        "1",
    ]);
    assert_eq!(from_file["statuses"]["200"], 5, "{from_file}");
}

#[test]
fn a_failed_threshold_exits_99_and_a_rate_is_kept() {
    let gw = testkit::spawn_gateway("s", &[]);
    // Every answer a 404: the failure-rate threshold is crossed.
    let out = stampede(&[
        &format!("{}/no-such-page", gw.url),
        "-n",
        "50",
        "--threshold",
        "failure_rate < 1%",
        "--json",
        "--quiet",
        "-o",
        &scratch(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(99),
        "k6's code for failed thresholds: {}",
        stderr(&out)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["thresholds"][0]["verdict"], "fail", "{s}");
    assert_eq!(s["statuses"]["404"], 50, "{s}");

    // The open model: 100 a second for 3 s, whatever the target's speed.
    let s = json_run(&[
        &format!("{}/health", gw.url),
        "-q",
        "100",
        "-c",
        "10",
        "-z",
        "3s",
        "--threshold",
        "failure_rate < 1%",
    ]);
    let n = s["requests"].as_u64().unwrap();
    assert!((285..=305).contains(&n), "about 300 arrivals in 3 s at 100/s: {s}");
    assert_eq!(s["thresholds"][0]["verdict"], "pass", "{s}");
}

/// Every request started is accounted for: against a server that accepts and never answers, the two
/// requests in flight at the deadline are counted aborted, the run takes its duration (not the
/// duration plus a graceful stop), and the summary says nothing completed.
#[test]
fn requests_in_flight_at_the_deadline_are_counted_aborted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn);
        }
    });
    let started = std::time::Instant::now();
    let s = json_run(&[&format!("http://{addr}/"), "-z", "2s", "-c", "2"]);
    let wall = started.elapsed();
    assert_eq!(
        (s["requests"].as_u64(), s["aborted"].as_u64()),
        (Some(0), Some(2)),
        "{s}"
    );
    assert_eq!(s["latency_ms"]["p50"], Value::Null, "{s}");
    assert!(wall < std::time::Duration::from_millis(3500), "a 2 s run took {wall:?}");

    let out = stampede(&[
        &format!("http://{addr}/"),
        "-z",
        "1s",
        "-c",
        "3",
        "--quiet",
        "-o",
        &scratch(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains("no request completed: 3 in flight when the load ended (aborted)"),
        "{text}"
    );
}

/// A connect that fails is not a request: with the open-file limit below the users asked for, the
/// failed connects are counted apart (out of the count, the rate and the latencies), the limit is said
/// before the load starts, and the failure rate still counts them.
#[test]
fn failed_connects_are_counted_apart_from_requests() {
    let gw = testkit::spawn_gateway("s", &[]);
    let results = scratch();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -Sn 96 && ulimit -Hn 96 && exec {} {}/health -c 300 -z 2s --json --quiet -o {results}",
            env!("CARGO_BIN_EXE_stampede"),
            gw.url
        ))
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        err.contains("300 users need at least 300 open files and the limit is 96"),
        "{err}"
    );
    let s = summary(&out);
    let (requests, connect_errors) = (s["requests"].as_u64().unwrap(), s["connect_errors"].as_u64().unwrap());
    assert!(requests > 0 && connect_errors > 0, "{s}");
    assert_eq!(
        s["failures"].get("connect"),
        None,
        "connect errors are not failed requests: {s}"
    );
    let rate = s["requests_per_second"].as_f64().unwrap();
    let load = s["load_seconds"].as_f64().unwrap();
    assert!(
        (rate - requests as f64 / load).abs() < 1.0,
        "the rate is of requests only: {s}"
    );
    assert!(s["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{s}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(r["totals"]["connect_errors"].as_u64(), Some(connect_errors));
    assert!(r["totals"]["aborted"].is_u64(), "{}", r["totals"]);
}

/// As oha: fastest, mean and slowest, bytes and their rate, a latency histogram, the percentiles and the
/// statuses; no results file unless `-o` asks for one; a progress that counts requests (not a 600 s
/// countdown) and shows no post-load window the ad-hoc form does not have.
#[test]
fn the_ad_hoc_summary_is_ohas_and_writes_no_file_unless_asked() {
    let gw = testkit::spawn_gateway("s", &[]);
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([&format!("{}/health", gw.url), "-n", "300", "-c", "2"])
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = stderr(&out);
    assert!(out.status.success(), "{text}{err}");
    for part in [
        "Fastest:",
        "Average:",
        "Slowest:",
        "Size/request:",
        "Size/sec:",
        "Response time histogram:",
        "Response time distribution:",
        "95.00% in",
        "Status code distribution:",
        "[200] 300 responses",
    ] {
        assert!(text.contains(part), "{part:?} in:\n{text}");
    }
    assert!(!text.contains("results:"), "{text}");
    assert!(
        std::fs::read_dir(cwd.path()).unwrap().next().is_none(),
        "no results file without -o"
    );
    assert!(err.contains("load started: 300 requests"), "{err}");
    assert!(!err.contains("post-load") && !err.contains("600s to go"), "{err}");

    let s = json_run(&[&format!("{}/health", gw.url), "-n", "50", "-c", "1"]);
    let bytes = s["bytes_read"].as_u64().unwrap();
    assert!(bytes >= 50 * 100, "50 answers of a head and a small body: {s}");
    assert!(s["latency_ms"]["min"].as_f64().unwrap() <= s["latency_ms"]["p50"].as_f64().unwrap());
}
