//! The field's topology with real parts: reference gateway replicas on one PostgreSQL, through Debian's
//! PgBouncer in transaction mode, behind Debian's nginx — sessions opened on one replica and used
//! through another, CPU summed over the replicas (and not measured once one of them is gone), and a
//! missing nginx named with its package.

use std::time::Duration;

use crate::run;
use testkit::{PgBouncer, TestDb};

/// nginx is installed, or the test may skip (`STAMPEDE_REQUIRE_NGINX` makes it fail instead).
fn nginx_present() -> bool {
    testkit::nginx_binary().is_some()
}

fn topology(database_url: &str, bus_url: &str, users: u32, duration: &str) -> String {
    format!(
        r#"
[target]
spawn = "gateway"
replicas = 2
proxy = "nginx"
database_url = "{database_url}"
env = {{ DB_POOLER = "transaction", SESSION_BUS_URL = "{bus_url}", GATEWAY_ACTIVATION_IO_MS = "20", SSE_KEEPALIVE_INTERVAL = "1" }}
[setup]
gateways = 2
tools = 40
servers = 2
[load]
users = {users}
ramp_up = "1s"
duration = "{duration}"
think_time = "20ms..60ms"
[observe]
post_load = "3s"
settle = "1s"
postgres = "{bus_url}"
[[actions]]
kind = "http"
path = "/tools?limit=20"
weight = 4
[[actions]]
kind = "http"
method = "POST"
path = "/tools/{{tool_id}}/state?activate={{bool}}"
expected = [409]
weight = 2
[[actions]]
kind = "http"
method = "POST"
path = "/gateways/{{gateway_id}}/state?activate={{bool}}"
expected = [409]
weight = 1
[[actions]]
name = "sse"
kind = "sse"
requests = [{{ method = "tools/list" }}, {{ method = "ping" }}]
hold = "200ms..600ms"
close = "abrupt"
weight = 3
[[actions]]
name = "mcp"
kind = "mcp"
protocol = "2025-03-26"         # sessions, whose requests must find the replica that holds them
requests = [{{ method = "tools/list" }}, {{ method = "ping" }}]
listen = true
hold = "200ms..600ms"
close = "delete"
weight = 3
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_behind_nginx_on_pgbouncer_serve_sessions_across_replicas() {
    if testkit::no_pg() || !nginx_present() {
        return;
    }
    let db = TestDb::postgres().await;
    let Some(pgb) = PgBouncer::start(&db.url, 4) else {
        return;
    };
    let r = run(&topology(&pgb.url, &db.url, 30, "6s")).await;
    let totals = |name: &str| {
        r.actions
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no action {name}"))
            .summary
            .clone()
    };
    for a in &r.actions {
        let s = &a.summary;
        eprintln!(
            "{}: {} ok {} expected {} failed {}",
            a.name, s.count, s.ok, s.expected, s.failed
        );
        assert_eq!(s.failed, 0, "{} failed: {:?} {:?}", a.name, a.statuses, a.errors);
    }
    // Round robin over two replicas: about half of each session's requests reached the other replica,
    // so every one of them went through the bus and the forward.
    let mcp = totals("mcp tools/list");
    assert!(mcp.count >= 20, "mcp sessions ran: {}", mcp.count);
    assert_eq!(
        totals("mcp listen").ok,
        totals("mcp listen").count,
        "every GET stream opened"
    );
    assert_eq!(
        totals("mcp delete").ok,
        totals("mcp delete").count,
        "every DELETE ended its session"
    );
    assert_eq!(r.mcp.reinitialized, 0, "no session was lost between replicas");
    let sse = totals("sse reply");
    assert!(
        sse.count >= 20 && sse.ok == sse.count,
        "every SSE reply arrived on its stream"
    );
    assert_eq!(r.target.replicas, 2);
    assert_eq!(r.target.proxy.as_deref(), Some("nginx"));
    let cpu_source = r.observed.sources.cpu.as_deref().unwrap_or_default();
    assert!(cpu_source.contains("sum of 2 replicas"), "{cpu_source}");
    assert!(r.observed.cpu_load_mean_pct.is_some(), "CPU measured over the replicas");
    assert!(
        r.observed
            .sources
            .metrics
            .as_deref()
            .unwrap_or_default()
            .contains(" + "),
        "each replica scraped"
    );
    drop(pgb);
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_dies_leaves_the_target_cpu_not_measured() {
    if testkit::no_pg() || !nginx_present() {
        return;
    }
    let db = TestDb::postgres().await;
    let text = topology(&db.url, &db.url, 4, "8s").replace("DB_POOLER = \"transaction\", ", "");
    let me = std::process::id();
    let killer = tokio::spawn(async move {
        // Once both replicas are up and the load runs, kill one of them.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let gateways: Vec<u32> = stampede_loadgen::host::descendants(me)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.starts_with("stampede-gate"))
            })
            .collect();
        assert_eq!(gateways.len(), 2, "two replicas running: {gateways:?}");
        std::process::Command::new("kill")
            .args(["-KILL", &gateways[1].to_string()])
            .status()
            .unwrap();
    });
    let r = run(&text).await;
    killer.await.unwrap();
    let measured: Vec<bool> = r.series.iter().map(|w| w.observed.cpu_pct.is_some()).collect();
    eprintln!("CPU measured per window: {measured:?}");
    assert!(measured.iter().take(3).any(|m| *m), "measured while both ran");
    assert!(
        measured.iter().rev().take(4).all(|m| !m),
        "not measured once a replica is gone (a sum without it would read as a quiet target)"
    );
    assert_eq!(r.observed.cpu_post_load_settled_mean_pct, None);
    drop(db);
}

#[test]
fn a_missing_nginx_is_named_with_its_package() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    std::fs::write(
        &scenario,
        "[target]\nspawn = \"gateway\"\nproxy = \"nginx\"\n[load]\nusers = 1\nduration = \"1s\"\n\
         [[actions]]\nkind = \"http\"\npath = \"/health\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("run")
        .arg(&scenario)
        .env("STAMPEDE_NGINX_BIN", dir.path().join("no-nginx-here"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("apt-get install nginx"), "{stderr}");
}
