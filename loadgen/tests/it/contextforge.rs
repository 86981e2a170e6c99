//! One scenario, four targets: `scenarios/contextforge.toml` against the real IBM MCP ContextForge
//! (1.0.7 in a cached python3.11 venv, and 1.1.0, which serves MCP 2026-07-28, in a Python 3.12 one;
//! from PyPI, started by `scripts/contextforge.sh`) and against the reference gateway in both profiles. Each must show setup succeeded — gateways registered on the
//! spawned upstream and its tools listed by the target — every action at least 99 % ok or declared
//! expected, and the target's CPU read from its process.
//!
//! Skips with one line where python3.11 or the package registry cannot be had, unless
//! `STAMPEDE_REQUIRE_CONTEXTFORGE` is set (as `.ci/run` does), where it fails instead.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::ContextForge;

const SECRET: &str = "contextforge-test-secret";

/// The reference gateway at a URL of its own, as a user would run it.
fn reference(profile: &str) -> testkit::Proc {
    testkit::spawn_gateway_with(&["--profile", profile], Some(SECRET), &[])
}

/// Run the scenario against `url` (kept seeded, so the federation can be checked afterwards); answers
/// the results.
fn run(label: &str, url: &str, auth: &[&str], pid: &str, out_dir: &Path) -> Value {
    let out = out_dir.join(format!("{label}.json"));
    let status = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("run")
        .arg(testkit::root().join("scenarios/contextforge.toml"))
        .args(["--target", url, "--duration", "6s", "--quiet", "-o"])
        .arg(&out)
        .args(["--set", "observe.post_load=\"3s\"", "--set", "setup.teardown=false"])
        .args(["--set", &format!("observe.pid={pid}"), "--set", "observe.children=true"])
        .args(auth)
        .env("STAMPEDE_TEST_SECRET", SECRET)
        .status()
        .unwrap();
    assert!(status.success(), "{label}: stampede run failed");
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

/// What the results must show on every target.
fn check(label: &str, r: &Value) {
    assert_eq!(r["complete"], true, "{label}");
    assert_eq!(r["setup"]["gateways"], 2, "{label}: both gateways registered");
    // Ten REST tools seeded, and each gateway's eleven federated from the upstream (6 built in, 5
    // generated): `tools_from = "all"` puts all of them where `{tool_name}` draws from.
    assert_eq!(r["setup"]["tools"], 32, "{label}: the seeded and the federated tools");
    // A target that speaks the stateless era has no session to delete: that series stays empty.
    let stateless = r["mcp"]["stateless"] == r["mcp"]["opened"];
    for a in r["actions"].as_array().unwrap() {
        let s = &a["summary"];
        let count = s["count"].as_f64().unwrap();
        let good = s["ok"].as_f64().unwrap() + s["expected"].as_f64().unwrap();
        if stateless && a["name"] == "mcp session delete" {
            assert_eq!(count, 0.0, "{label}: no DELETE in the stateless era");
            continue;
        }
        assert!(count > 0.0, "{label}: {} never ran", a["name"]);
        assert!(
            good / count >= 0.99,
            "{label}: {} {good} of {count} ok or expected: {}",
            a["name"],
            a["errors"]
        );
    }
    let mcp = &r["mcp"];
    assert!(
        mcp["opened"].as_u64().unwrap() > 0 && mcp["errored"] == 0 && mcp["server_closed"] == 0,
        "{label}: Streamable HTTP sessions opened and ended by the client: {mcp}"
    );
    let o = &r["observed"];
    assert!(
        o["cpu_load_mean_pct"].as_f64().is_some(),
        "{label}: the target's CPU was measured"
    );
    assert!(
        o["sources"]["cpu"].as_str().unwrap().starts_with("/proc/"),
        "{label}: from its process"
    );
    assert!(
        r["upstream"]["cpu_seconds"].as_f64().is_some(),
        "{label}: the upstream's own CPU"
    );
    eprintln!(
        "{label}: {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, failed {}, target CPU {:.0}% during the load",
        r["totals"]["rps"].as_f64().unwrap(),
        r["totals"]["p50_ms"].as_f64().unwrap(),
        r["totals"]["p99_ms"].as_f64().unwrap(),
        r["totals"]["failed"],
        o["cpu_load_mean_pct"].as_f64().unwrap()
    );
}

/// The target lists, for each gateway the run registered, the upstream's tools (`…-echo`).
async fn federated(label: &str, url: &str, token: &str) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let get = |path: String| {
        let http = http.clone();
        async move {
            http.get(path)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let gateways = get(format!("{url}/gateways")).await;
    let ours: Vec<&Value> = gateways
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["name"].as_str().unwrap_or("").starts_with("st-"))
        .collect();
    assert_eq!(ours.len(), 2, "{label}: {gateways}");
    for g in ours {
        let id = g["id"].as_str().unwrap();
        let tools = get(format!("{url}/tools?gateway_id={id}&include_inactive=true")).await;
        let echo = tools
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["originalName"] == "echo" || t["name"].as_str().unwrap_or("").ends_with("-echo"));
        assert!(
            echo,
            "{label}: gateway {} lists its upstream's tools: {tools}",
            g["name"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scenario_runs_against_contextforge_and_the_reference_gateway_in_both_profiles() {
    let required = std::env::var_os("STAMPEDE_REQUIRE_CONTEXTFORGE").is_some();
    if Command::new("python3.11").arg("--version").output().is_err() {
        assert!(
            !required,
            "python3.11 is missing and STAMPEDE_REQUIRE_CONTEXTFORGE is set"
        );
        eprintln!("skipped: python3.11 is not installed (ContextForge runs in a python3.11 venv)");
        return;
    }
    let out = tempfile::tempdir().unwrap();

    // 1.0.7 speaks only the session era: every `auto` session falls back to initialize; 1.1.0
    // serves 2026-07-28, and every session speaks it.
    for (version, era) in [("1.0.7", "fell_back"), ("1.1.0", "stateless")] {
        let Some(cf) = ContextForge::start(version) else {
            // Installing needs PyPI: without it (and not required) the test cannot be had here.
            assert!(
                !required,
                "ContextForge {version} could not be installed or started (see above)"
            );
            eprintln!("skipped: ContextForge {version} could not be installed or started (no package registry?)");
            return;
        };
        let label = format!("contextforge {version}");
        let token = ["--set", &format!("target.token={:?}", cf.token)].map(str::to_owned);
        let token: Vec<&str> = token.iter().map(String::as_str).collect();
        let r = run(&label, &cf.url, &token, &cf.pid, out.path());
        check(&label, &r);
        assert_eq!(r["mcp"][era], r["mcp"]["opened"], "{label}: {}", r["mcp"]);
        federated(&label, &cf.url, &cf.token).await;
    }

    let minted = stampede_loadgen::target::mint(SECRET).unwrap();
    for profile in ["fixed", "legacy"] {
        let gw = reference(profile);
        let pid = gw.child.id().to_string();
        let auth = ["--set", "target.jwt_secret_env=STAMPEDE_TEST_SECRET"];
        let r = run(profile, &gw.url, &auth, &pid, out.path());
        check(profile, &r);
        assert_eq!(
            r["mcp"]["stateless"], r["mcp"]["opened"],
            "{profile}: auto speaks 2026-07-28 to it"
        );
        federated(profile, &gw.url, &minted).await;
    }
}
