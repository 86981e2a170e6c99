//! Our binaries as the workspace built them: tests of one crate run another crate's binaries too (the
//! load generator's tests start the gateway), so they are found next to the test binary, not through
//! `CARGO_BIN_EXE_*`, which names only the crate's own.

use std::path::PathBuf;
use std::process::Command;

/// `target/<profile>/<name>`: the directory above the running test binary (`target/<profile>/deps/`).
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is not built: run the tests with --workspace",
        bin.display()
    );
    bin
}

/// The `stampede` command line, ready for arguments.
pub fn stampede() -> Command {
    Command::new(path("stampede"))
}
