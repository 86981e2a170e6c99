//! Faults under load: the target's PostgreSQL stopped for 10 s in the middle of a run. The gateway
//! answers 503 while the database is away and nothing else, serves again within 5 s of its return,
//! the run ends on time, and the results file puts the failures in the seconds of the outage.
//! The cluster is the test's own (`scripts/pg.sh` with a state file of its own), so stopping it
//! disturbs no other test.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

fn pg(state: &Path, what: &str) -> String {
    let out = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh"))
        .arg(what)
        .env("STAMPEDE_PG_STATE", state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg.sh {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Stops the test's cluster however the test ends.
struct Cluster<'a>(&'a Path);

impl Drop for Cluster<'_> {
    fn drop(&mut self) {
        let _ = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg.sh"))
            .arg("stop")
            .env("STAMPEDE_PG_STATE", self.0)
            .output();
    }
}

fn now_s() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn a_database_outage_costs_503s_in_its_own_seconds_and_the_gateway_recovers() {
    if testkit::no_pg() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("pg-state");
    let url = pg(&state, "start");
    let _cluster = Cluster(&state);
    let secret = "outage-secret";
    let gw = testkit::spawn_gateway(
        secret,
        &[
            ("DATABASE_URL", &url),
            ("DB_POOL_TIMEOUT_MS", "2000"),
            ("READ_CACHE_MS", "0"),
        ],
    );
    let token = stampede_loadgen::target::mint(secret).unwrap();
    let results = dir.path().join("run.json");
    let run = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args([
            &format!("{}/tools", gw.url),
            "-q",
            "40",
            "-c",
            "40",
            "-z",
            "24s",
            "--timeout",
            "5s",
            "--quiet",
        ])
        .args(["-H", &format!("Authorization: Bearer {token}"), "-o"])
        .arg(&results)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(6));
    let paused_at = now_s();
    pg(&state, "pause");
    std::thread::sleep(Duration::from_secs(10));
    pg(&state, "resume");
    let resumed_at = now_s();
    let out = run.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let r: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    let started: f64 = SystemTime::from(
        r["load"]["started_at"]
            .as_str()
            .unwrap()
            .parse::<humantime::Timestamp>()
            .unwrap(),
    )
    .duration_since(UNIX_EPOCH)
    .unwrap()
    .as_secs_f64();
    let (pause, resume) = (paused_at - started, resumed_at - started);
    let load_s = r["load"]["seconds"].as_f64().unwrap();
    assert!(
        (24.0..25.5).contains(&load_s),
        "the run ends on time: {load_s} s of load"
    );

    // Every answer was 200 or 503: the outage is a clear "unavailable", never a 500 or a timeout.
    let a = &r["actions"][0];
    let statuses = a["statuses"].as_object().unwrap();
    let unavailable = statuses.get("503").and_then(Value::as_u64).unwrap_or(0);
    for (status, n) in statuses {
        assert!(
            status == "200" || status == "503",
            "{n} answers of {status}: {statuses:?}"
        );
    }
    assert!(unavailable > 0, "the outage was seen: {statuses:?}");
    assert_eq!(a["failures"].as_object().unwrap().len(), 1, "{}", a["failures"]);

    // The failures sit in the outage's seconds: none before it, none from 5 s after its end.
    let mut report = Vec::new();
    for w in r["series"].as_array().unwrap() {
        let t = w["t"].as_f64().unwrap();
        let failed = w["all"]["failed"].as_u64().unwrap();
        report.push(format!("{t:.0}s:{failed}"));
        if t <= pause.floor() {
            assert_eq!(
                failed, 0,
                "second {t} is before the outage (at {pause:.1} s): {report:?}"
            );
        }
        if t - 1.0 >= resume + 5.0 {
            assert_eq!(
                failed, 0,
                "second {t} is 5 s after the return (at {resume:.1} s): {report:?}"
            );
        }
    }
    eprintln!(
        "outage {pause:.1}..{resume:.1} s: {unavailable} answers 503, failures per second {}",
        report.join(" ")
    );
    assert!(ready(&gw.url), "the gateway is ready again");
}

/// `GET /ready` answers 200 (plain std: no runtime here).
fn ready(base: &str) -> bool {
    use std::io::{Read as _, Write as _};
    let addr = base.trim_start_matches("http://");
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.write_all(format!("GET /ready HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n").as_bytes());
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200")
}
