//! The load generator's integration tests: the `stampede` binary and the library against the reference
//! gateway, the built-in upstream and the real parts (`testkit`). Each module says what it tests.

mod adhoc;
mod affinity;
mod alloc;
mod cli;
mod completions;
mod conformance;
mod contextforge;
mod direct;
mod docs;
mod engine;
mod faults;
mod federation;
mod gate;
mod hostile;
mod layering;
mod mcp;
mod merge;
mod observe;
mod prometheus;
mod properties;
mod report;
mod reproduce;
mod scripts;
mod sdk;
mod shard;
mod soak;
mod tls;
mod topology;
mod upstream;

use stampede_loadgen::engine::RunOptions;
use stampede_loadgen::results::Results;
use stampede_loadgen::scenario;

/// Run a scenario given as TOML text, in process, to its end.
pub async fn run(text: &str) -> Results {
    let s = scenario::parse("test.toml", text, "test", &[]).unwrap_or_else(|e| panic!("{e}"));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let out = stampede_loadgen::engine::run(s, RunOptions::default(), rx)
        .await
        .expect("run");
    Results::from_run(&out, None)
}

/// A shipped scenario (`scenarios/<name>.toml`) with `overrides` (field path, TOML value), in process.
pub async fn run_shipped(name: &str, overrides: &[(&str, toml::Value)]) -> Results {
    let path = format!("{}/../scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let set: Vec<scenario::Override> = overrides
        .iter()
        .map(|(k, v)| scenario::Override::new(k, v.clone()))
        .collect();
    let s = scenario::parse(&path, &text, name, &set).unwrap_or_else(|e| panic!("{e}"));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let out = stampede_loadgen::engine::run(s, RunOptions::default(), rx)
        .await
        .expect("run");
    Results::from_run(&out, None)
}

/// The override that picks a spawned gateway's profile.
pub fn profile(name: &str) -> (&'static str, toml::Value) {
    ("target.profile", toml::Value::String(name.into()))
}
