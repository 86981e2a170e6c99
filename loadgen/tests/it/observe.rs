//! The target-side observers against the reference gateway: blocked queries and blocking chains on
//! real PostgreSQL (legacy) and none (fixed); post-load CPU after an abrupt SSE storm that stays high
//! (legacy) or falls to idle (fixed); "not measured" for a target without metrics. And the resource
//! observer on a real process with known files and sockets.

use std::time::Duration;

use crate::run;
use stampede_loadgen::output;
use testkit::{PgBouncer, TestDb};

fn lock_contention(profile: &str, database_url: &str) -> String {
    format!(
        r#"
[target]
spawn = "gateway"
profile = "{profile}"
database_url = "{database_url}"
env = {{ GATEWAY_ACTIVATION_IO_MS = "300", DB_POOL_SIZE = "20" }}
[setup]
gateways = 2
tools = 150
[load]
users = 40
duration = "5s"
think_time = "10ms..50ms"
[observe]
post_load = "1s"
[[actions]]
kind = "http"
method = "POST"
path = "/gateways/{{gateway_id}}/state?activate={{bool}}"
expected = [409]
weight = 2
[[actions]]
kind = "http"
method = "POST"
path = "/tools/{{tool_id}}/state?activate={{bool}}"
expected = [409]
weight = 10
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_lock_contention_shows_blocked_queries_and_chains_and_fixed_shows_none() {
    if std::env::var_os("STAMPEDE_TEST_PG").is_none() {
        eprintln!("skipped: STAMPEDE_TEST_PG is not set (`make test` starts a throwaway PostgreSQL)");
        return;
    }
    let db = TestDb::postgres().await;
    let legacy = run(&lock_contention("legacy", &db.url)).await;
    let o = &legacy.observed;
    eprintln!(
        "legacy: blocked max {:?} mean {:?}, longest wait {:?}, idle in tx {:?}, chains {}",
        o.blocked_queries_max,
        o.blocked_queries_mean,
        o.longest_lock_wait_s,
        o.idle_in_tx_max,
        o.blocking_chains.len()
    );
    assert!(o.sources.postgres.is_some());
    assert!(o.blocked_queries_max.unwrap() > 0, "legacy piles up blocked queries");
    let chain = o.blocking_chains.first().expect("at least one blocking chain");
    assert!(chain.len() >= 2);
    assert!(chain[0].query.contains("FOR UPDATE"), "{chain:?}");

    let fixed = run(&lock_contention("fixed", &db.url)).await;
    let o = &fixed.observed;
    eprintln!(
        "fixed: blocked max {:?}, lock conflicts {:?}",
        o.blocked_queries_max, o.lock_conflicts
    );
    assert_eq!(
        o.blocked_queries_max,
        Some(0),
        "measured, and nothing blocked, throughout"
    );
    assert!(o.blocking_chains.is_empty());
    assert!(
        fixed
            .series
            .iter()
            .all(|w| w.observed.blocked_queries.is_none_or(|b| b == 0)),
        "0 in every window"
    );
    drop(db);
}

fn slow_upstream(profile: &str, database_url: &str) -> String {
    format!(
        r#"
[target]
spawn = "gateway"
profile = "{profile}"
database_url = "{database_url}"
env = {{ DB_POOL_SIZE = "20", GATEWAY_ACTIVATION_TIMEOUT_MS = "5000" }}
[upstream]
spawn = true
initialize_latency = "2s"
[setup]
gateways = 1
tools = 20
[load]
users = 8
duration = "5s"
think_time = "10ms..50ms"
[observe]
post_load = "1s"
[[actions]]
kind = "http"
method = "POST"
path = "/gateways/{{gateway_id}}/state?activate={{bool}}"
expected = [409]
[[actions]]
kind = "http"
method = "POST"
path = "/tools/{{tool_id}}/state?activate={{bool}}"
expected = [409]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_holds_the_legacy_gateway_lock_for_its_latency_and_fixed_holds_none() {
    if std::env::var_os("STAMPEDE_TEST_PG").is_none() {
        eprintln!("skipped: STAMPEDE_TEST_PG is not set (`make test` starts a throwaway PostgreSQL)");
        return;
    }
    let db = TestDb::postgres().await;
    // Real federation: every activation initializes the upstream, which takes two seconds to answer:
    // the observers sample once a second, so one sample of each hold sees it at least a second old.
    let legacy = run(&slow_upstream("legacy", &db.url)).await;
    let o = &legacy.observed;
    eprintln!(
        "legacy: blocked max {:?}, longest wait {:?}, idle in tx longest {:?}",
        o.blocked_queries_max, o.longest_lock_wait_s, o.idle_in_tx_longest_s
    );
    assert!(
        o.idle_in_tx_longest_s.unwrap() >= 0.9,
        "the gateway's lock is held, idle in transaction, across the upstream's latency"
    );
    assert!(
        o.blocked_queries_max.unwrap() > 0,
        "other toggles of the gateway wait on it"
    );
    assert!(o.longest_lock_wait_s.unwrap() >= 0.9, "for about that long");

    let fixed = run(&slow_upstream("fixed", &db.url)).await;
    let o = &fixed.observed;
    eprintln!("fixed: blocked max {:?}", o.blocked_queries_max);
    assert_eq!(
        o.blocked_queries_max,
        Some(0),
        "the upstream is contacted outside any transaction"
    );
    drop(db);
}

fn sse_storm(profile: &str) -> String {
    format!(
        r#"
[target]
spawn = "gateway"
profile = "{profile}"
env = {{ SSE_KEEPALIVE_INTERVAL = "0.2" }}
[load]
users = 60
duration = "3s"
[observe]
post_load = "6s"
settle = "2s"
[[actions]]
name = "drop"
kind = "sse"
hold = "100ms..400ms"
close = "abrupt"
[[actions]]
name = "reset"
kind = "sse"
hold = "100ms..400ms"
close = "abrupt"
rst = true
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_load_cpu_stays_high_after_a_legacy_storm_and_falls_to_idle_when_fixed() {
    let legacy = run(&sse_storm("legacy")).await;
    let o = &legacy.observed;
    eprintln!(
        "legacy: CPU load {:?} post-load {:?} settled {:?}; sessions at the end {:?}",
        o.cpu_load_mean_pct, o.cpu_post_load_mean_pct, o.cpu_post_load_settled_mean_pct, o.mcp_sessions_active_end
    );
    assert!(o.sources.cpu.as_deref().is_some_and(|c| c.starts_with("/proc/")));
    assert!(
        o.cpu_post_load_settled_mean_pct.unwrap() > 50.0,
        "abandoned sessions keep a core busy"
    );
    assert!(o.mcp_sessions_active_end.unwrap() > 0.0);

    let fixed = run(&sse_storm("fixed")).await;
    let o = &fixed.observed;
    eprintln!(
        "fixed: CPU load {:?} post-load {:?} settled {:?}; sessions at the end {:?}; ends {:?}",
        o.cpu_load_mean_pct,
        o.cpu_post_load_mean_pct,
        o.cpu_post_load_settled_mean_pct,
        o.mcp_sessions_active_end,
        o.mcp_session_ends
    );
    assert!(
        o.cpu_post_load_settled_mean_pct.unwrap() < 2.0,
        "back to idle after the settle time"
    );
    assert_eq!(o.mcp_sessions_active_end, Some(0.0));
    assert!(o.mcp_session_ends.get("client_gone").copied().unwrap_or(0.0) > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_without_metrics_is_not_measured_and_the_run_goes_on() {
    let app = axum::Router::new().route("/ok", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let r = run(&format!(
        r#"
[target]
url = "http://{addr}"
[load]
users = 2
duration = "2s"
think_time = "10ms"
[observe]
post_load = "1s"
[[actions]]
kind = "http"
path = "/ok"
"#
    ))
    .await;
    assert!(r.totals.count > 10, "the load ran");
    let o = &r.observed;
    assert_eq!(
        o.sources.cpu.as_deref(),
        Some("process_cpu_seconds_total"),
        "would come from metrics"
    );
    assert_eq!(o.cpu_load_mean_pct, None);
    assert_eq!(o.cpu_post_load_settled_mean_pct, None);
    assert_eq!(o.blocked_queries_max, None);
    assert_eq!(o.lock_conflicts, None);
    assert!(
        r.series
            .iter()
            .all(|w| w.observed.cpu_pct.is_none() && w.observed.mcp_sessions_active.is_none())
    );
    // A target at a loopback URL: its sockets are this machine's, its process is not known.
    assert_eq!(o.sources.resources, Some(format!("TCP on port {}", addr.port())));
    assert!(o.resources.established_load_max.is_some());
    assert_eq!(o.resources.target_rss_load_max_bytes, None);
    let text = output::summary(&r);
    assert!(text.contains("load mean not measured"), "{text}");
    assert!(
        text.contains("blocked queries (PostgreSQL): max not measured"),
        "{text}"
    );
    assert!(
        text.contains("target resources: RSS not measured; fds not measured"),
        "{text}"
    );
    let _ = Duration::ZERO;
}

/// Listens on a port, prints it, and on a line from stdin opens `FILES` files and accepts `CONNS`
/// connections, prints `held`, and keeps them all until it is killed: what its peers close sits in
/// CLOSE_WAIT.
const HOLDER: &str = r#"
import os, socket, sys
files, conns = int(sys.argv[1]), int(sys.argv[2])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print(srv.getsockname()[1], flush=True)
sys.stdin.readline()
held = [open(os.devnull) for _ in range(files)]
held += [srv.accept()[0] for _ in range(conns)]
print("held", flush=True)
sys.stdin.readline()
"#;

/// A child killed on drop.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_observed_on_a_real_process_with_known_fds_and_sockets() {
    use stampede_loadgen::observe::{ObserveConfig, Observers};
    use std::io::{BufRead as _, Write as _};
    const FILES: u32 = 50;
    const CONNS: u32 = 5;
    let Ok(child) = std::process::Command::new("python3")
        .args(["-c", HOLDER, &FILES.to_string(), &CONNS.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    let mut child = Killed(child);
    let pid = child.0.id();
    let mut stdin = child.0.stdin.take().unwrap();
    let mut stdout = std::io::BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap();

    let config = ObserveConfig {
        pids: vec![pid],
        ports: vec![port],
        ..ObserveConfig::default()
    };
    let mut observers = Observers::start(config, reqwest::Client::new());
    let before = observers.before(Duration::from_secs(5)).await;
    let fds_before = before.target_fds.expect("fds read before");
    assert_eq!(before.tcp_close_wait, Some(0));
    let source = observers.sources().resources.unwrap();
    assert_eq!(source, format!("/proc/{pid}; TCP on port {port}"));

    stdin.write_all(b"go\n").unwrap();
    let clients: Vec<std::net::TcpStream> = (0..CONNS)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held");
    // Closed from this side only: the child's ends go to CLOSE_WAIT on its listening port.
    drop(clients);
    let o = testkit::eventually(Duration::from_secs(10), "the held sockets in CLOSE_WAIT", || {
        let o = observers.window();
        let done = o.tcp_close_wait == Some(CONNS) && o.target_fds >= Some(fds_before + FILES + CONNS);
        async move { done.then_some(o) }
    })
    .await;
    eprintln!("before {before:?}\nafter {o:?}");
    assert!(o.target_threads >= Some(1));
    assert!(o.target_rss_bytes > Some(0));
    assert_eq!(o.tcp_established, Some(0), "the test's own ends are not the target's");

    // The port without the pid: the sockets are still the machine's to count.
    let mut by_port = Observers::start(
        ObserveConfig {
            ports: vec![port],
            ..ObserveConfig::default()
        },
        reqwest::Client::new(),
    );
    let o = by_port.before(Duration::from_secs(5)).await;
    assert_eq!(
        (o.tcp_close_wait, o.target_fds, o.target_rss_bytes),
        (Some(CONNS), None, None)
    );

    // Gone: nothing of it is measured, not even its port, whose listener went with it.
    drop(child);
    let o = testkit::eventually(Duration::from_secs(10), "the gone process unmeasured", || {
        let o = observers.window();
        async move { o.target_rss_bytes.is_none().then_some(o) }
    })
    .await;
    assert_eq!((o.target_fds, o.target_threads, o.tcp_close_wait), (None, None, None));
    drop(stdin);
}

fn watch_pgbouncer(admin: &str) -> String {
    format!(
        r#"
[target]
spawn = "gateway"
[load]
users = 2
duration = "6s"
think_time = "100ms"
[observe]
post_load = "2s"
settle = "0s"
pgbouncer = "{admin}"
[[actions]]
kind = "http"
path = "/health"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_clients_waiting_on_a_dry_pool_are_seen_and_an_absent_one_is_not_measured() {
    use sqlx::Connection as _;
    let db = TestDb::postgres().await;
    let Some(pgb) = PgBouncer::start(&db.url, 1) else {
        return;
    };
    // Four clients that each hold the one server connection for 1.5 s: three wait in turn.
    let url = pgb.url.clone();
    let sleepers = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let mut clients = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let url = url.clone();
            clients.spawn(async move {
                let mut c = sqlx::PgConnection::connect(&url)
                    .await
                    .expect("connect through PgBouncer");
                sqlx::Executor::execute(&mut c, "SELECT pg_sleep(1.5)")
                    .await
                    .expect("sleep");
            });
        }
        clients.join_all().await;
    });
    let r = run(&watch_pgbouncer(&pgb.admin)).await;
    sleepers.await.unwrap();
    let o = &r.observed;
    eprintln!(
        "PgBouncer: waiting max {:?} mean {:?}, longest wait {:?} s (source {:?})",
        o.pgbouncer_waiting_max, o.pgbouncer_waiting_mean, o.pgbouncer_longest_wait_s, o.sources.pgbouncer
    );
    assert!(o.pgbouncer_waiting_max.unwrap() >= 2, "clients queued on the pool");
    assert!(o.pgbouncer_longest_wait_s.unwrap() >= 1.0, "and waited for it");
    assert!(o.sources.pgbouncer.as_deref().unwrap().ends_with("/pgbouncer"));
    let summary = output::summary(&r);
    assert!(summary.contains("PgBouncer pools: clients waiting"), "{summary}");
    drop(pgb);
    drop(db);

    // Nobody at the address: not measured, never 0, and the run goes on.
    let r = run(&watch_pgbouncer("postgres://postgres@127.0.0.1:9/pgbouncer")).await;
    assert!(r.complete);
    assert_eq!(r.observed.pgbouncer_waiting_max, None);
    assert_eq!(r.observed.pgbouncer_longest_wait_s, None);
}
