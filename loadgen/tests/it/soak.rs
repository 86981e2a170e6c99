//! `scenarios/soak.toml` in a short form against the reference gateway, its resources observed from
//! /proc: the legacy profile keeps what abandoning clients left — sessions that never expire, their
//! sockets in CLOSE_WAIT and their files open after the post-load window — and fails the scenario's
//! leak thresholds; the fixed profile gives it all back and passes them.

use stampede_loadgen::data::Verdict;
use stampede_loadgen::results::Results;

use crate::profile;

/// The shipped soak, seconds long; the fixed gateway's idle sessions expire within its post-load window.
async fn soak(overrides: &[(&str, toml::Value)]) -> Results {
    use toml::Value;
    let mut set = vec![
        ("load.users", Value::Integer(20)),
        ("load.ramp_up", Value::String("1s".into())),
        ("load.duration", Value::String("8s".into())),
        ("observe.post_load", Value::String("6s".into())),
        ("observe.settle", Value::String("4s".into())),
    ];
    set.extend(overrides.iter().cloned());
    crate::run_shipped("soak", &set).await
}

fn failed(r: &Results, metric: &str) -> bool {
    let judged = (r.thresholds.iter().find(|t| t.threshold.starts_with(metric)))
        .unwrap_or_else(|| panic!("no threshold on {metric}"));
    judged.verdict == Verdict::Fail
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_gateway_keeps_what_abandoning_clients_left_and_the_fixed_one_gives_it_back() {
    let legacy = soak(&[profile("legacy")]).await;
    let l = &legacy.observed.resources;
    eprintln!("legacy: {l:?}");
    assert!(
        l.close_wait_settled.is_some_and(|n| n > 10.0),
        "abandoned streams' sockets in CLOSE_WAIT after the load: {:?}",
        l.close_wait_settled
    );
    assert!(
        l.target_fds_settled_growth_pct.is_some_and(|g| g > 20.0),
        "files left open: {l:?}"
    );
    assert!(
        legacy.observed.mcp_sessions_active_end.is_some_and(|n| n > 10.0),
        "sessions never expire"
    );
    for metric in ["close_wait.settled", "target_fds.settled_growth", "mcp_sessions_left"] {
        assert!(failed(&legacy, metric), "legacy fails {metric}");
    }

    let idle = ("target.env.MCP_SESSION_IDLE_TIMEOUT", toml::Value::String("2".into()));
    let fixed = soak(&[profile("fixed"), idle]).await;
    let f = &fixed.observed.resources;
    eprintln!("fixed: {f:?}");
    assert_eq!(f.close_wait_settled, Some(0.0));
    assert_eq!(f.close_wait_load_max, Some(0), "a client's close is seen at once");
    assert!(f.target_fds_settled_growth_pct.is_some_and(|g| g < 5.0), "{f:?}");
    assert_eq!(fixed.observed.mcp_sessions_active_end, Some(0.0));
    for metric in ["close_wait.settled", "target_fds.settled_growth", "mcp_sessions_left"] {
        assert!(!failed(&fixed, metric), "fixed passes {metric}");
    }
}
