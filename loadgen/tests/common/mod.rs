//! What the loadgen tests share: child processes that announce their URL on their first line (the
//! upstream, the gateway), and a scenario text run in process.

#![allow(dead_code)] // each test binary uses its own part

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use stampede_loadgen::engine::{self, RunOptions};
use stampede_loadgen::results::Results;
use stampede_loadgen::scenario;

/// A child process killed on drop, with the URL its first line named.
pub struct Proc {
    pub child: Child,
    pub url: String,
    pub _dir: Option<tempfile::TempDir>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The URL in a child's first stdout line (`… listening on http://ADDR`).
pub fn first_line_url(child: &mut Child) -> String {
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    stampede_loadgen::process::listening_url(&first)
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned()
}

/// `stampede upstream` with `args`.
pub fn upstream(args: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("upstream")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start stampede upstream");
    let url = first_line_url(&mut child);
    Proc { child, url, _dir: None }
}

/// Run a scenario given as TOML text, in process, to its end.
pub async fn run(text: &str) -> Results {
    let s = scenario::parse("test.toml", text, "test", &[]).unwrap_or_else(|e| panic!("{e}"));
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let out = engine::run(s, RunOptions::default(), rx).await.expect("run");
    Results::from_run(&out, None)
}
