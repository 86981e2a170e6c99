//! `scripts/reproduce.sh --small` end to end (what `make reproduce SMALL=1` runs): the field's topology
//! at small size — a throwaway PostgreSQL behind a real PgBouncer, three gateway replicas behind a real
//! nginx, the upstream MCP server — against the legacy then the fixed profile, the comparison, the gate
//! and the report, then the listen storm (MCP 2026-07-28) against each profile. Seconds, not minutes;
//! the shape it checks is the one the full run shows: the legacy gateway leaves its abandoned sessions
//! and listen streams spinning after the load, the fixed one ends them all.

use std::path::Path;
use std::process::Command;

use stampede_loadgen::results::Results;

#[test]
fn reproduce_small_writes_both_runs_the_comparison_and_the_report() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let bin = Path::new(env!("CARGO_BIN_EXE_stampede")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = Command::new("bash")
        .arg(root.join("scripts/reproduce.sh"))
        .arg("--small")
        .arg("--bin")
        .arg(bin)
        .arg("--out")
        .arg(&out)
        .env("STAMPEDE_REPRODUCE_PG_STATE", dir.path().join("pg-state"))
        .env("STAMPEDE_REPRODUCE_PGBOUNCER_STATE", dir.path().join("pgbouncer-state"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "reproduce failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It says what it is doing as it goes.
    for step in [
        "starting a throwaway PostgreSQL",
        "legacy: legacy profile",
        "fixed: fixed profile",
        "legacy vs fixed",
        "legacy gated against a baseline of the fixed run",
        "done in",
    ] {
        assert!(stdout.contains(step), "no {step:?} in:\n{stdout}");
    }
    let legacy = Results::read(&out.join("legacy.json")).unwrap();
    let fixed = Results::read(&out.join("fixed.json")).unwrap();
    assert_eq!(legacy.target.profile.as_deref(), Some("legacy"));
    assert_eq!(fixed.target.profile.as_deref(), Some("fixed"));
    assert!(legacy.complete && fixed.complete);
    for r in [&legacy, &fixed] {
        assert_eq!(r.target.replicas, 3, "the field's three replicas");
        assert_eq!(r.target.proxy.as_deref(), Some("nginx"));
        assert!(r.observed.sources.pgbouncer.is_some(), "PgBouncer's pools watched");
        assert!(r.observed.pgbouncer_waiting_max.is_some());
    }
    assert!(
        legacy.observed.sources.postgres.is_some() && fixed.observed.blocked_queries_max.is_some(),
        "both runs watched PostgreSQL"
    );
    // The figure the full run is about, at small size too: the fixed gateway idles after the load, the
    // legacy one spins on its abandoned sessions.
    let settled = |r: &Results| {
        r.observed
            .cpu_post_load_settled_mean_pct
            .expect("post-load CPU measured")
    };
    assert!(settled(&fixed) < 5.0, "fixed after the load: {} %", settled(&fixed));
    assert!(settled(&legacy) > 50.0, "legacy after the load: {} %", settled(&legacy));
    let left = |r: &Results| r.observed.mcp_sessions_active_end.unwrap();
    assert!(left(&legacy) > 0.0, "legacy leaves its abandoned sessions");
    assert_eq!(left(&fixed), 0.0, "fixed ends every session");
    assert_eq!(fixed.observed.blocked_queries_max, Some(0));
    let compare = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(compare.contains("| MCP sessions left open |"), "{compare}");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("<svg") && report.contains("Side by side"));
    assert!(!out.join("ablation.md").exists(), "no ablation unless asked");
    let gate = std::fs::read_to_string(out.join("gate.md")).unwrap();
    assert!(gate.contains("post-load") || gate.contains("cpu"), "{gate}");

    // The listen storm, the same failure in MCP 2026-07-28: every stream stateless, and only legacy
    // still busy after the load.
    assert!(stdout.contains("listen storm: legacy vs fixed"), "{stdout}");
    let listen_legacy = Results::read(&out.join("listen-legacy.json")).unwrap();
    let listen_fixed = Results::read(&out.join("listen-fixed.json")).unwrap();
    for r in [&listen_legacy, &listen_fixed] {
        assert!(r.mcp.opened > 0 && r.mcp.stateless == r.mcp.opened, "{:?}", r.mcp);
    }
    assert!(
        settled(&listen_fixed) < 5.0,
        "fixed after the listen storm: {} %",
        settled(&listen_fixed)
    );
    assert!(
        settled(&listen_legacy) > 50.0,
        "legacy after the listen storm: {} %",
        settled(&listen_legacy)
    );
    assert!(out.join("listen-compare.md").exists());
}
