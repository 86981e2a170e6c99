//! `scenarios/affinity.toml` in a short form, with its real parts (three reference gateway replicas
//! on PostgreSQL behind Debian's nginx, round robin): the legacy profile, without the session bus, loses
//! sessions — requests answered "session not found", counted per action, sessions re-initialized —
//! while its stateless-era requests and the fixed profile lose none; answers are counted per replica
//! from `x-served-by`.

use stampede_loadgen::data::FailureKind;
use stampede_loadgen::results::Results;
use testkit::TestDb;

/// The shipped scenario, shortened, on `db`, with `overrides`.
async fn affinity(db: &TestDb, overrides: &[(&str, toml::Value)]) -> Results {
    use toml::Value;
    let mut set = vec![
        ("target.database_url", Value::String(db.url.clone())),
        ("load.users", Value::Integer(24)),
        ("load.ramp_up", Value::String("1s".into())),
        ("load.duration", Value::String("5s".into())),
        ("observe.post_load", Value::String("2s".into())),
        ("observe.settle", Value::String("1s".into())),
    ];
    set.extend(overrides.iter().cloned());
    crate::run_shipped("affinity", &set).await
}

use crate::profile;

/// Requests answered "session not found", over the actions whose names start with `prefix`.
fn lost(r: &Results, prefix: &str) -> u64 {
    (r.actions.iter().filter(|a| a.name.starts_with(prefix)))
        .map(|a| a.failures.get(&FailureKind::SessionNotFound).copied().unwrap_or(0))
        .sum()
}

fn report(label: &str, r: &Results) {
    for a in &r.actions {
        eprintln!(
            "{label}: {}: {} ok {} failed {:?} served by {:?}",
            a.name, a.summary.count, a.summary.ok, a.failures, a.served_by
        );
    }
    eprintln!(
        "{label}: Streamable HTTP re-initialized {} recovered {} ({} ms)",
        r.mcp.reinitialized, r.mcp.recovered, r.mcp.recovery_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_lost_across_replicas_without_the_bus_and_found_with_it() {
    if testkit::no_pg() || testkit::nginx_binary().is_none() {
        return;
    }
    let db = TestDb::postgres().await;
    let legacy = affinity(&db, &[profile("legacy")]).await;
    report("legacy", &legacy);
    // Round robin over three replicas: a session's next request reaches another replica two times in
    // three, and without the bus that replica does not know it.
    let mcp_lost = lost(&legacy, "mcp session");
    let mcp_sessions = legacy.mcp.opened - legacy.mcp.stateless;
    assert!(
        mcp_lost * 2 > mcp_sessions,
        "most session-era sessions lost a request: {mcp_lost} of {mcp_sessions} sessions"
    );
    assert!(legacy.mcp.reinitialized > 0, "the client started lost sessions again");
    assert!(
        lost(&legacy, "sse session") > 0,
        "SSE messages reached replicas without the session"
    );
    assert_eq!(
        lost(&legacy, "mcp stateless"),
        0,
        "the stateless era has no session to lose"
    );
    let stateless = legacy
        .actions
        .iter()
        .find(|a| a.name == "mcp stateless tools/list")
        .unwrap();
    assert_eq!(stateless.summary.failed, 0);
    assert_eq!(
        stateless.served_by.len(),
        3,
        "round robin over three replicas: {:?}",
        stateless.served_by
    );
    assert!(stateless.served_by.keys().all(|k| k.starts_with("replica-")));
    assert_eq!(
        stateless.served_by.values().sum::<u64>(),
        stateless.summary.count,
        "every answer named its replica"
    );

    let fixed = affinity(&db, &[profile("fixed")]).await;
    report("fixed", &fixed);
    for a in &fixed.actions {
        assert_eq!(a.summary.failed, 0, "{}: {:?} {:?}", a.name, a.failures, a.errors);
    }
    assert_eq!(fixed.mcp.reinitialized, 0);
    let tools = fixed
        .actions
        .iter()
        .find(|a| a.name == "mcp session tools/list")
        .unwrap();
    assert!(tools.summary.count > 20, "sessions ran: {}", tools.summary.count);
    // Forwarded over the bus, an answer names the replica that holds the session.
    assert_eq!(tools.served_by.len(), 3, "{:?}", tools.served_by);
    drop(db);
}
