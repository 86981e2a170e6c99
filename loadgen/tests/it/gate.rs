//! `stampede baseline`, `gate` and `compare` end to end against an in-process target whose speed the
//! test controls: a run gated against its own fresh baseline passes (no false alarm), a slower one
//! fails naming the check, and the exit codes, Markdown and JUnit XML are what CI needs.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use testkit::stampede;

/// A target answering `/ok` after `delay` ms; runs on its own thread for the test's lifetime.
fn target(delay: Arc<AtomicU64>) -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/ok",
                axum::routing::get(move || {
                    let delay = Arc::clone(&delay);
                    async move {
                        tokio::time::sleep(Duration::from_millis(delay.load(Ordering::Relaxed))).await;
                        "ok"
                    }
                }),
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn scenario(dir: &Path, name: &str, addr: std::net::SocketAddr) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "# test\nname = \"{name}\"\n[target]\nurl = \"http://{addr}\"\n[load]\nmodel = \"open\"\nrate = 100.0\nduration = \"2s\"\n\
             [observe]\npost_load = \"0s\"\nmetrics = \"\"\n[thresholds]\nall = [\"failure_rate < 1%\"]\n\
             [[actions]]\nname = \"ok\"\nkind = \"http\"\npath = \"/ok\"\n"
        ),
    )
    .unwrap();
    path
}

fn run(scenario: &Path, out: &Path) {
    let status = stampede()
        .arg("run")
        .arg(scenario)
        .args(["--quiet", "-o"])
        .arg(out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
}

#[test]
fn gate_passes_its_own_baseline_and_fails_a_slower_run_naming_the_check() {
    let dir = tempfile::tempdir().unwrap();
    // The target's own delay dominates latency, so the machine's noise is small beside it; the open
    // model keeps the rate fixed whatever the latency.
    let delay = Arc::new(AtomicU64::new(20));
    let addr = target(Arc::clone(&delay));
    let s = scenario(dir.path(), "gated", addr);
    let baseline = dir.path().join("baselines/gated.json");

    let out = stampede()
        .arg("baseline")
        .arg(&s)
        .args(["--repeat", "3", "-o"])
        .arg(&baseline)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(b["runs"], 3);
    assert!(b["metrics"]["all"]["p50"]["median"].as_f64().unwrap() >= 20.0);

    // The same binary, the same target: no false alarm.
    let same = dir.path().join("same.json");
    run(&s, &same);
    let md = dir.path().join("gate.md");
    let xml = dir.path().join("gate.xml");
    let out = stampede()
        .arg("gate")
        .arg(&same)
        .arg("--baseline")
        .arg(&baseline)
        .arg("--markdown")
        .arg(&md)
        .arg("--junit")
        .arg(&xml)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}");
    assert!(table.contains("PASS"), "{table}");
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(
        markdown.contains("| kind | check | baseline | current | change | allowed | verdict |"),
        "{markdown}"
    );
    assert!(markdown.contains("✅ pass"));
    let junit = std::fs::read_to_string(&xml).unwrap();
    let doc = roxmltree::Document::parse(&junit).expect("JUnit XML parses");
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert!(cases.len() >= 10, "one test case per check");
    assert!(cases.iter().any(|c| c.attribute("name") == Some("p99")));
    assert_eq!(doc.descendants().filter(|n| n.has_tag_name("failure")).count(), 0);

    // Three times slower: a regression, named.
    delay.store(60, Ordering::Relaxed);
    let slow = dir.path().join("slow.json");
    run(&s, &slow);
    let out = stampede()
        .arg("gate")
        .arg(&slow)
        .arg("--baseline")
        .arg(&baseline)
        .arg("--junit")
        .arg(&xml)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    let failing: Vec<&str> = table.lines().filter(|l| l.ends_with("FAIL")).collect();
    assert!(failing.iter().any(|l| l.contains(" p50 ")), "{table}");
    assert!(
        !failing.iter().any(|l| l.contains(" rps ")),
        "the open model held its rate:\n{table}"
    );
    let junit = std::fs::read_to_string(&xml).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let failed: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase") && n.children().any(|c| c.has_tag_name("failure")))
        .filter_map(|n| n.attribute("name"))
        .collect();
    assert_eq!(failed, ["p50"], "{junit}");
    assert!(table.contains(" ms "), "figures carry their unit: {table}");
    assert_eq!(
        table.lines().filter(|l| l.contains("failure_rate")).count(),
        1,
        "the scenario's failure-rate threshold is the one bar for it: {table}"
    );

    // Four times faster: no regression. A warning to re-record (exit 0), a failure only when asked.
    delay.store(5, Ordering::Relaxed);
    let fast = dir.path().join("fast.json");
    run(&s, &fast);
    let gate_fast = |extra: &[&str]| {
        let out = stampede()
            .arg("gate")
            .arg(&fast)
            .arg("--baseline")
            .arg(&baseline)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, table) = gate_fast(&[]);
    assert_eq!(code, Some(0), "a faster run is no regression: {table}");
    assert!(table.contains("consider re-recording"), "{table}");
    assert!(!table.contains("FAIL"), "{table}");
    let (code, table) = gate_fast(&["--fail-on-stale"]);
    assert_eq!(code, Some(1), "{table}");
    assert!(
        table.lines().next().unwrap().contains("FAIL"),
        "the headline says what the exit says: {table}"
    );

    // compare: side by side, with the change against the first.
    let out = stampede().arg("compare").arg(&same).arg(&slow).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("requests per second") && text.contains("p50 (ms)") && text.contains('%'),
        "{text}"
    );
}

#[test]
fn gate_input_errors_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let addr = target(Arc::new(AtomicU64::new(0)));
    let a = scenario(dir.path(), "alpha", addr);
    let b = scenario(dir.path(), "beta", addr);
    let alpha = dir.path().join("alpha.json");
    run(&a, &alpha);
    let beta_baseline = dir.path().join("beta-baseline.json");
    let out = stampede()
        .arg("baseline")
        .arg(&b)
        .args(["--repeat", "1", "-o"])
        .arg(&beta_baseline)
        .output()
        .unwrap();
    assert!(out.status.success());

    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (
            vec![alpha.as_os_str(), "--baseline".as_ref(), "missing.json".as_ref()],
            "missing.json",
        ),
        (
            vec![alpha.as_os_str(), "--baseline".as_ref(), beta_baseline.as_os_str()],
            "the baseline is of scenario \"beta\"",
        ),
        (
            vec![
                "nowhere.json".as_ref(),
                "--baseline".as_ref(),
                beta_baseline.as_os_str(),
            ],
            "nowhere.json",
        ),
        (
            vec![alpha.as_os_str(), "--baseline".as_ref(), alpha.as_os_str()],
            "is the results file of a run, not a baseline",
        ),
    ];
    for (args, says) in cases {
        let out = stampede().arg("gate").args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let out = stampede().arg("gate").arg(&alpha).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no --baseline is a usage error");
}

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

#[test]
fn compare_warns_of_mixed_scenarios_and_marks_an_interrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("fixed-small.json")).unwrap()).unwrap();
    other["scenario"]["name"] = "something-else".into();
    other["complete"] = false.into();
    other["completion"] = "interrupted".into();
    let other_path = dir.path().join("stopped.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let out = stampede()
        .arg("compare")
        .arg(data("fixed-small.json"))
        .arg(&other_path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.lines().next().unwrap().contains("stopped (fixed) (interrupted)"),
        "{stdout}"
    );
    assert!(
        stderr.contains("different scenarios (mixed-4000, something-else)"),
        "{stderr}"
    );
}

#[test]
fn a_results_file_and_a_baseline_in_each_others_place_are_named() {
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/baselines/ci-smoke.json");
    let results = data("fixed-small.json");
    let out = stampede()
        .arg("gate")
        .arg(&baseline)
        .arg("--baseline")
        .arg(&results)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fixed-small.json is the results file of a run, not a baseline"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = stampede()
        .arg("report")
        .arg(&baseline)
        .arg("-o")
        .arg(dir.path().join("r.html"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ci-smoke.json is a baseline, not the results file of a run"),
        "{err}"
    );
}

#[test]
fn a_baseline_from_runs_already_made_takes_complete_runs_of_one_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.json");
    let ok = stampede()
        .args(["baseline", "--from"])
        .arg(data("fixed-small.json"))
        .arg(data("legacy-small.json"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let b: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(b["runs"], 2);
    assert_eq!(b["scenario"], "mixed-4000");

    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("fixed-small.json")).unwrap()).unwrap();
    other["complete"] = false.into();
    other["completion"] = "interrupted".into();
    let stopped = dir.path().join("stopped.json");
    std::fs::write(&stopped, other.to_string()).unwrap();
    let refused = stampede()
        .args(["baseline", "--from"])
        .arg(data("fixed-small.json"))
        .arg(&stopped)
        .arg("-o")
        .arg(dir.path().join("no.json"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("interrupted run"));
    assert!(!dir.path().join("no.json").exists());
}

#[test]
fn a_run_on_another_store_than_the_baseline_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data("fixed-small.json")).unwrap()).unwrap();
    run["target"]["store"] = "postgres".into();
    let on_pg = dir.path().join("pg.json");
    std::fs::write(&on_pg, run.to_string()).unwrap();
    run["target"]["store"] = "sqlite".into();
    let on_sqlite = dir.path().join("sqlite.json");
    std::fs::write(&on_sqlite, run.to_string()).unwrap();
    let baseline = dir.path().join("b.json");
    let made = stampede()
        .args(["baseline", "--from"])
        .arg(&on_pg)
        .arg("-o")
        .arg(&baseline)
        .output()
        .unwrap();
    assert!(made.status.success());
    let out = stampede()
        .arg("gate")
        .arg(&on_sqlite)
        .arg("--baseline")
        .arg(&baseline)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("on postgres, the results against one on sqlite"), "{err}");
}
