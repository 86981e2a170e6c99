//! stampede's load generator as a library: scenarios, the engine, recording, observers, results and
//! gates (DESIGN.md, "The load generator"). The `stampede` binary and the `stampede-tui` dashboard are
//! thin front ends over it. Only the command-line surface exists so far; the engine is the next issue.

/// The version every results file and report is stamped with.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
