//! The load generator's integration tests: the `stampede` binary and the library against the reference
//! gateway, the built-in upstream and the real parts (`testkit`). Each module says what it tests.

mod adhoc;
mod affinity;
mod alloc;
mod cli;
mod completions;
mod conformance;
mod contextforge;
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
