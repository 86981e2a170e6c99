//! What a run merged from shards (`stampede merge`) was made of: which shards, where each sits on the
//! merged timeline, and which were missing or interrupted.

use serde::{Deserialize, Serialize};

/// What a merged run was made of.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergeInfo {
    /// N: how many shards the load was split into.
    pub shards: u32,
    /// The shards' results files, in shard order.
    pub parts: Vec<MergedPart>,
    /// Shards whose results were not given (`I/N`).
    pub missing: Vec<String>,
    /// Shards whose run was interrupted (`I/N`).
    pub interrupted: Vec<String>,
    /// The shard whose target-side figures (CPU, blocked queries, metrics, pools) the run carries.
    pub observed_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergedPart {
    pub shard: String,
    pub file: String,
    pub complete: bool,
    /// Where its windows sit on the merged timeline: seconds after the earliest shard's load start.
    pub offset_s: u64,
    /// How late its load started after the common start (`--start-at`), when it had one.
    pub start_lag_ms: Option<f64>,
}
