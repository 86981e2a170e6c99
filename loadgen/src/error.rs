//! The errors of a run that decide how it ends: a mistake in what it was given, or a failure on the
//! way. A leaf: every layer can return them, and the front ends map them to exit codes in one place
//! (`cli::CliError`).

/// A mistake in what the run was given (not in the target): the front ends exit 2 on it, as on a bad
/// scenario file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Why a run could not be carried out: a mistake in what it was given, or a failure on the way. The
/// front ends map the two to exit codes 2 and 1 (`cli::CliError`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    BadInput(#[from] BadInput),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}
