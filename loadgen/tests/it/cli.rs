//! The `stampede` binary end to end: validation messages and exit codes, a short run against a
//! spawned reference gateway (setup seeds it through its API), the results file it writes, and the
//! live feed while it runs.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::stampede;

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn validate_names_file_line_and_field_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.toml",
        "[target]\nspawn = \"gateway\"\n\n[load]\nusers = 10\nduration = \"10 s\"\n\n[[actions]]\nkind = \"http\"\npath = \"/tools\"\n",
    );
    let out = stampede().args(["validate"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:6:12: load.duration: bad duration \"10 s\""),
        "{err}"
    );

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = stampede()
        .arg("validate")
        .arg(root.join("smoke.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A bad run is refused before anything starts.
    let out = stampede().arg("run").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_short_run_against_a_spawned_gateway_writes_results_and_serves_the_live_feed() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("out.json");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let live = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let child = stampede()
        .arg("run")
        .arg(root.join("ci-smoke.toml"))
        .args([
            "--users",
            "10",
            "--duration",
            "3s",
            "--set",
            "observe.post_load=\"1s\"",
            "--quiet",
        ])
        .arg("--live")
        .arg(live.to_string())
        .arg("-o")
        .arg(&results)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // The live feed answers while the run goes on.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let snapshot: Value = rt.block_on(async {
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(resp) = http.get(format!("http://{live}/snapshot")).send().await
                && resp.status().is_success()
            {
                let s: Value = resp.json().await.unwrap();
                if s["window"].is_object() {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no snapshot from the live feed");
    });
    assert_eq!(snapshot["scenario"], "ci-smoke");
    assert!(snapshot["slots"].as_array().unwrap().len() >= 5);
    let first_event = rt.block_on(async {
        let mut resp = reqwest::get(format!("http://{live}/live")).await.unwrap();
        let chunk = tokio::time::timeout(Duration::from_secs(5), resp.chunk())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&chunk).into_owned()
    });
    assert!(first_event.starts_with("event: snapshot\ndata: {"), "{first_event}");

    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("failure rate"), "{stdout}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(r["complete"], true);
    assert_eq!(r["target"]["spawned"], true);
    assert_eq!(
        r["scenario"]["spec"]["load"]["users"], 10,
        "the scenario as run, after overrides"
    );
    assert_eq!(r["setup"]["tools"], 30);
    assert!(r["totals"]["count"].as_u64().unwrap() > 50);
    assert_eq!(
        r["totals"]["failed"],
        0,
        "{}",
        serde_json::to_string_pretty(&r["actions"]).unwrap()
    );
    assert!(r["sse"]["opened"].as_u64().unwrap() > 0);
    let phases: Vec<&str> = r["load"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases.first(), Some(&"ramp_up"));
    assert_eq!(phases.last(), Some(&"post_load"));
}

/// A run that finished but failed a threshold exits 99 (k6's code), so a CI job sees it; `--help`
/// lists every exit code.
#[test]
fn a_failed_threshold_exits_99_and_help_lists_the_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = stampede()
        .arg("run")
        .arg(root.join("ci-smoke.toml"))
        .args(["--users", "2", "--duration", "1s", "--quiet"])
        .args(["--set", "observe.post_load=\"0s\"", "--set", "observe.settle=\"0s\""])
        .args(["--set", "thresholds.all=[\"p50 < 0.001ms\", \"failure_rate < 100%\"]"])
        .arg("-o")
        .arg(dir.path().join("out.json"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(99), "{stdout}\n{stderr}");
    assert!(stdout.contains("p50 < 0.001ms — FAIL"), "{stdout}");
    assert!(stderr.contains("1 threshold(s) failed"), "{stderr}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("out.json")).unwrap()).unwrap();
    assert_eq!(r["complete"], true, "the results are written all the same");

    let help = stampede().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for line in ["Exit codes:", "  2 ", "  99 ", "  130 "] {
        assert!(help.contains(line), "--help lists {line:?}: {help}");
    }
}

#[test]
fn ctrl_c_stops_the_load_and_still_writes_the_results_marked_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("interrupted.json");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let child = stampede()
        .arg("run")
        .arg(root.join("ci-smoke.toml"))
        .args(["--users", "5", "--duration", "60s", "--quiet", "-o"])
        .arg(&results)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let started = std::time::Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "stopped promptly");
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("INCOMPLETE"), "{stdout}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(r["complete"], false);
    assert_eq!(r["completion"], "interrupted");
    assert!(r["totals"]["count"].as_u64().unwrap() > 0);
}

/// A pipe whose reader is already gone: every write to it is EPIPE.
fn closed_pipe() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer.into()
}

#[test]
fn a_closed_stdout_or_stderr_ends_the_output_not_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    // `stampede validate … | head -0`: nothing to read, still exit 0.
    let out = stampede()
        .arg("validate")
        .arg(root.join("smoke.toml"))
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    // A run whose reader left: the summary goes nowhere, the results are still written.
    let results = dir.path().join("piped.json");
    let status = stampede()
        .arg("run")
        .arg(root.join("ci-smoke.toml"))
        .args([
            "--users",
            "5",
            "--duration",
            "1s",
            "--set",
            "observe.post_load=\"0s\"",
            // Without a post-load window sessions may be left at the end: this is about pipes.
            "--set",
            "thresholds.all=[]",
            "-o",
        ])
        .arg(&results)
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "no panic (101) on a closed pipe");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(r["complete"], true);
}

#[test]
fn a_missing_token_variable_is_bad_input_and_nothing_starts() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = stampede()
        .arg("run")
        .arg(root.join("ci-smoke.toml"))
        .args(["--set", "target.token_env=STAMPEDE_TEST_NO_SUCH_VARIABLE"])
        .env_remove("STAMPEDE_TEST_NO_SUCH_VARIABLE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("target.token_env: the environment variable $STAMPEDE_TEST_NO_SUCH_VARIABLE is not set"),
        "{err}"
    );
    assert!(!err.contains("started"), "nothing was started: {err}");
}

#[test]
fn a_gateway_that_wants_a_token_gets_a_hint_and_no_start_line() {
    // A gateway of our own at a URL: the run is not given a token for it.
    let gateway = testkit::spawn_gateway_with(&[], None, &[]);
    let url = gateway.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let run = |extra: &[&str]| {
        stampede()
            .arg("run")
            .arg(root.join("ci-smoke.toml"))
            .args([
                "--target",
                &url,
                "--duration",
                "1s",
                "--set",
                "observe.post_load=\"0s\"",
                // The gateway federates for real: its gateway needs an upstream that answers.
                "--set",
                "upstream.spawn=true",
                // Without a post-load window sessions may be left at the end: this is about tokens.
                "--set",
                "thresholds.all=[]",
                "--quiet",
            ])
            .args(extra)
            .arg("-o")
            .arg(dir.path().join("out.json"))
            .env("STAMPEDE_TEST_SECRET", "my-test-key")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("target.token_env"), "says how to give a token: {err}");
    assert!(!err.contains("started"), "the load never started: {err}");

    // With a token (minted from the gateway's secret) the run goes through and its teardown deletes
    // what its setup seeded: a run that only discovers finds nothing to use.
    let token = ["--set", "target.jwt_secret_env=STAMPEDE_TEST_SECRET"];
    let out = run(&token);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&[&token[..], &["--set", "setup.mode=\"discover\""]].concat());
    drop(gateway);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("has none to offer"), "the seed was deleted: {err}");
}

#[test]
fn a_target_that_refuses_a_gateway_registration_stops_setup_with_the_reason_and_a_hint() {
    // A gateway that federates for real, and a run that gives its gateways no upstream.
    let gateway = testkit::spawn_gateway("my-test-key", &[]);
    let url = gateway.url.clone();
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = stampede()
        .arg("run")
        .arg(root.join("ci-smoke.toml"))
        .args(["--target", &url, "--duration", "1s", "--quiet"])
        .args(["--set", "target.jwt_secret_env=STAMPEDE_TEST_SECRET"])
        .arg("-o")
        .arg(dir.path().join("out.json"))
        .env("STAMPEDE_TEST_SECRET", "my-test-key")
        .output()
        .unwrap();
    drop(gateway);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/gateways answered 502"),
        "names the request and the answer: {err}"
    );
    assert!(
        err.contains("Failed to initialize gateway"),
        "the target's reason: {err}"
    );
    assert!(err.contains("[upstream] spawn = true"), "what to do: {err}");
    assert!(
        err.contains("GATEWAY_ACTIVATION_IO_MS=0"),
        "and why the scenario's simulated activation is gone: {err}"
    );
    assert!(
        !dir.path().join("out.json").exists(),
        "no results for a run that never started"
    );
}

#[test]
fn a_negative_user_count_on_the_command_line_is_judged_with_the_scenario() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let out = stampede()
        .arg("run")
        .arg(root.join("smoke.toml"))
        .args(["--users", "-5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("load.users: is -5: it must be more than 0"), "{err}");
    assert!(!err.contains("-- -5"), "not taken for a flag: {err}");
}
