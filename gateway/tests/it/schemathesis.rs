//! schemathesis (PyPI) against the running gateway, on SQLite and on PostgreSQL: requests generated
//! from `/openapi.json` (valid and invalid bodies, parameters and headers, calls without the token,
//! methods no route has, and sequences that follow the document's links from a create to its get,
//! toggle and delete), every check schemathesis has: no 5xx, every status, content type, header and
//! body as documented (SSE events too), invalid input refused and valid input taken.
//!
//! The venv is made by `scripts/schemathesis.sh` (python3.11). Without python3.11 the test skips,
//! unless `STAMPEDE_REQUIRE_SCHEMATHESIS` is set (as `.ci/run` does), where it fails instead.
//! `STAMPEDE_SCHEMATHESIS_EXAMPLES` (default 25 per operation) and `STAMPEDE_SCHEMATHESIS_SEED`
//! (default 1, `random` for a new one each run) size it; `make fuzz` runs it far longer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use testkit::{Db, Gateway, TestDb};
use tokio::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `None` when schemathesis cannot be had here and is not required.
fn available() -> Option<()> {
    let required = std::env::var_os("STAMPEDE_REQUIRE_SCHEMATHESIS").is_some();
    let installed = std::process::Command::new(root().join("scripts/schemathesis.sh"))
        .arg("install")
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        assert!(
            !required,
            "schemathesis could not be installed (python3.11 and PyPI) and STAMPEDE_REQUIRE_SCHEMATHESIS is set"
        );
        eprintln!("skipped: schemathesis could not be installed (it needs python3.11 and PyPI)");
        return None;
    }
    Some(())
}

async fn schemathesis_finds_nothing(db: Db) {
    if available().is_none() {
        return;
    }
    let test_db = TestDb::new(db).await;
    let gw = Gateway::start(&test_db, &[]).await;
    let examples = std::env::var("STAMPEDE_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let seed = std::env::var("STAMPEDE_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let work = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(root().join("scripts/schemathesis.sh"));
    cmd.current_dir(work.path())
        .args(["run", &gw.base, &gw.token, "--max-examples", &examples])
        .args(["--report", "ndjson", "--report-dir"])
        .arg(work.path());
    if seed != "random" {
        cmd.args(["--seed", &seed]);
    }
    let out = cmd.output().await.expect("run scripts/schemathesis.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // e.g. "  2272 generated, 2272 passed, 56 skipped"
    let cases = stdout
        .lines()
        .find(|l| l.contains(" generated, "))
        .map(str::trim)
        .unwrap_or("no case count");
    let seed_line = stdout.lines().find(|l| l.starts_with("Seed:")).unwrap_or("");
    eprintln!("{db:?}: schemathesis: {cases} ({seed_line}, {examples} examples per operation)");
    assert!(
        out.status.success(),
        "{db:?}: schemathesis found failures:\n{stdout}\n{stderr}"
    );
    let generated: u64 = cases
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(generated > 0, "{db:?}: no cases were generated:\n{stdout}");
    // Cases per operation, from the run's event log; every operation the document lists had some.
    let per_operation = cases_per_operation(work.path());
    let table: Vec<String> = per_operation.iter().map(|(op, n)| format!("{n:>6}  {op}")).collect();
    eprintln!("{db:?}: cases per operation:\n{}", table.join("\n"));
    let (_, doc) = gw.get("/openapi.json").await;
    for (path, item) in doc["paths"].as_object().unwrap() {
        // schemathesis leaves out the address it read the document from.
        if path == "/openapi.json" {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let op = format!("{} {path}", method.to_uppercase());
            assert!(
                per_operation.get(&op).is_some_and(|&n| n > 0),
                "{db:?}: no case for {op}: {per_operation:?}"
            );
        }
    }
    assert!(
        gw.stop().await,
        "{db:?}: the gateway did not exit cleanly after the run"
    );
}

/// Cases per operation label ("GET /tools"; "Stateful tests" for the link-following sequences), summed
/// over the phases in the NDJSON event log schemathesis writes.
fn cases_per_operation(dir: &Path) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    let logs = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path());
    for log in logs.filter(|p| p.extension().is_some_and(|e| e == "ndjson")) {
        for line in std::fs::read_to_string(&log).unwrap().lines() {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            let recorder = &event["ScenarioFinished"]["recorder"];
            if let (Some(label), Some(cases)) = (recorder["label"].as_str(), recorder["cases"].as_object()) {
                *counts.entry(label.to_owned()).or_insert(0) += cases.len() as u64;
            }
        }
    }
    assert!(!counts.is_empty(), "no event log in {}", dir.display());
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_on_sqlite() {
    schemathesis_finds_nothing(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_on_postgres() {
    if testkit::no_pg() {
        return;
    }
    schemathesis_finds_nothing(Db::Postgres).await;
}
