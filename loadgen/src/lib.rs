//! stampede's load generator as a library: scenarios, the engine, recording, results and the live
//! feed (docs/design.md, "The load generator"). The `stampede` binary and the `stampede-tui` dashboard are
//! thin front ends over it.
//!
//! Data path: `scenario` (file → validated `Scenario`) → `engine` (target, setup, load model, one-second
//! `timeline`) → `record` (per-window histograms and counters) → `results` (JSON file), with snapshots
//! to `output` (progress, summary) and `live` (the feed for the dashboard). Finished runs are judged by
//! `gate` and drawn by `report` (HTML); shards' results are added up into one run by `merge`.

pub mod actions;
pub mod adhoc;
pub mod cli;
pub mod commands;
pub mod data;
pub mod engine;
pub mod error;
pub mod export;
pub mod format;
pub mod gate;
pub mod host;
pub mod lang;
pub mod live;
pub mod matrix;
pub mod merge;
pub mod observe;
pub mod output;
pub mod process;
pub mod record;
pub mod report;
pub mod results;
pub mod scenario;
pub mod setup;
pub mod shard;
pub mod stdio;
pub mod target;
pub mod upstream_server;

/// The version every results file and report is stamped with.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
