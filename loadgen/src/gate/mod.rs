//! Judging runs against a baseline: baselines (median and spread over repeated runs), the gate
//! (absolute, relative and threshold checks), the one judgement every front end uses, and how it is shown.
//! The metrics and the threshold grammar it judges with are data (`crate::data`).

pub mod baseline;
pub mod check;
pub mod render;
pub mod verdict;
