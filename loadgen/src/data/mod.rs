//! The data every part of a run reads and nothing of it imports: what each second of a run was
//! (`Window`) and what a live view is shown (`Snapshot`), an action's figures (`Summary`) and failure
//! kinds, what the target-side observers saw, the named metrics with their units, and the threshold
//! grammar with its verdicts. A leaf (the role of k6's `metrics` package): it imports nothing else of
//! stampede's, so data flows one way — scenario → engine → record → results → gate, report, dashboard —
//! with each of them reading these types instead of each other's.

pub mod merged;
pub mod metrics;
pub mod observed;
pub mod run;
pub mod summary;
pub mod threshold;

pub use merged::{MergeInfo, MergedPart};
pub use metrics::{MetricKind, Metrics};
pub use observed::{ChainLink, Observed, ObservedSummary, ResourcesSummary, Sources};
pub use run::{Completion, LatencyBuckets, Phase, RequestLoop, Snapshot, StreamFigures, Window, run_label};
pub use summary::{FailureKind, Summary};
pub use threshold::{Judged, Threshold, Verdict};
