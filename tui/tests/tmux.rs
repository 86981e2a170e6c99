//! `stampede-tui replay` in a real terminal (tmux): what a person sees, and the keys they press.

use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux is needed for this test (.ci/run installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Wait until the pane's screen satisfies `ok`; answer the screen.
fn wait_until(session: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if ok(&screen) {
            return screen;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never saw {what}:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for(session: &str, text: &str) -> String {
    wait_until(session, text, |s| s.contains(text))
}

struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
    }
}

#[test]
fn replay_in_a_terminal_shows_the_run_and_answers_keys() {
    let bin = env!("CARGO_BIN_EXE_stampede-tui");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/replay.json");
    let name = format!("stampede-test-{}", std::process::id());
    let command = format!("NO_COLOR=1 {bin} replay {}", data.display());
    let status = Command::new("tmux")
        .args(["new-session", "-d", "-s", &name, "-x", "100", "-y", "30", &command])
        .status()
        .expect("tmux");
    assert!(status.success());
    let session = Session(name.clone());

    let screen = wait_for(&name, "Requests/s");
    for text in [
        "REPLAY",
        "ci-smoke",
        "post-load",
        "12s elapsed",
        "Latency p50",
        "Status codes",
        "Blocked queries — not measured",
    ] {
        assert!(screen.contains(text), "{text:?} missing:\n{screen}");
    }

    tmux(&["send-keys", "-t", &name, "Left", "Left"]);
    let screen = wait_for(&name, "10s elapsed");
    assert!(screen.contains("2s left"), "{screen}");

    tmux(&["send-keys", "-t", &name, "?"]);
    wait_for(&name, "any key closes the help");
    tmux(&["send-keys", "-t", &name, "x"]);

    tmux(&["send-keys", "-t", &name, "Tab"]);
    wait_until(&name, "one panel full size", |s| {
        s.contains("Requests/s") && !s.contains("Latency p50")
    });

    tmux(&["send-keys", "-t", &name, "q"]);
    let start = Instant::now();
    while Command::new("tmux")
        .args(["has-session", "-t", &name])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(start.elapsed() < Duration::from_secs(5), "q quits");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(session);
}

#[test]
fn without_a_terminal_it_says_so_instead_of_drawing() {
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/replay.json");
    let out = Command::new(env!("CARGO_BIN_EXE_stampede-tui"))
        .arg("replay")
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no escape codes into a pipe");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs an interactive terminal"), "{err}");
}
