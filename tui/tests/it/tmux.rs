//! `stampede-tui` in a real terminal (tmux): what a person sees, the keys they press, and that the
//! program ends — by itself or on `q` — leaving the terminal as it found it (main screen, cursor shown).

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
    wait_long(session, what, Duration::from_secs(10), ok)
}

fn wait_long(session: &str, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if ok(&screen) {
            return screen;
        }
        assert!(start.elapsed() < timeout, "never saw {what}:\n{screen}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for(session: &str, text: &str) -> String {
    wait_until(session, text, |s| s.contains(text))
}

struct Session(String);

impl Session {
    /// `command` in a 100×30 pane, inside a shell that says how it exited and then stays, so the
    /// terminal can be inspected after the program has gone.
    fn start(tag: &str, command: &str) -> Session {
        let name = format!("stampede-{tag}-{}", std::process::id());
        let shell = format!("{command}; echo \"exit=$?\"; sleep 600");
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                "100",
                "-y",
                "30",
                "sh",
                "-c",
                &shell,
            ])
            .status()
            .expect("tmux");
        assert!(status.success());
        Session(name)
    }

    /// Wait for the program to exit; answer its exit code as the shell printed it.
    fn exit_code(&self, timeout: Duration) -> i32 {
        let screen = wait_long(&self.0, "the program's exit", timeout, |s| s.contains("exit="));
        let code = screen
            .split("exit=")
            .nth(1)
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        code.parse().unwrap_or_else(|_| panic!("exit code {code:?}:\n{screen}"))
    }

    /// The terminal after the program: back on the main screen, cursor visible.
    fn assert_terminal_restored(&self) {
        let state = tmux(&["display-message", "-p", "-t", &self.0, "#{alternate_on} #{cursor_flag}"]);
        assert_eq!(
            state.trim(),
            "0 1",
            "alternate screen off, cursor shown (alternate_on cursor_flag)"
        );
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.0]).output();
    }
}

#[test]
fn replay_in_a_terminal_shows_the_run_and_answers_keys() {
    let bin = env!("CARGO_BIN_EXE_stampede-tui");
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/replay.json");
    let command = format!("NO_COLOR=1 {bin} replay {}", data.display());
    let session = Session::start("replay", &command);
    let name = session.0.clone();

    let screen = wait_for(&name, "Requests/s");
    for text in [
        "REPLAY",
        "ci-smoke",
        "post-load",
        "12s elapsed",
        "Latency (whole run) p50",
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
        s.contains("Requests/s") && !s.contains("Latency (")
    });

    tmux(&["send-keys", "-t", &name, "q"]);
    assert_eq!(session.exit_code(Duration::from_secs(5)), 0, "q quits");
    session.assert_terminal_restored();
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

#[test]
fn bad_input_is_named_before_the_terminal_is_asked_for_and_exits_2() {
    for args in [vec!["replay", "nope.json"], vec!["run", "nope.toml"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_stampede-tui"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("nope."), "{args:?} names the file: {err}");
        assert!(!err.contains("interactive terminal"), "{args:?}: {err}");
    }
}

fn bin_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_BIN_EXE_stampede-tui"))
        .parent()
        .unwrap()
        .to_owned()
}

fn scenario(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

fn read_results(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("results {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

#[test]
fn run_ends_by_itself_says_where_the_results_are_and_q_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run.json");
    let command = format!(
        "NO_COLOR=1 {} run {} --users 10 --duration 3s --set observe.post_load=1s -o {}",
        env!("CARGO_BIN_EXE_stampede-tui"),
        scenario("ci-smoke.toml").display(),
        out.display()
    );
    let session = Session::start("run", &command);
    wait_long(&session.0, "the run in progress", Duration::from_secs(60), |s| {
        s.contains("RUN") && s.contains("ci-smoke")
    });
    let screen = wait_long(&session.0, "the run's end", Duration::from_secs(60), |s| {
        s.contains("finished: results in")
    });
    assert!(screen.contains("post-load"), "{screen}");
    tmux(&["send-keys", "-t", &session.0, "q"]);
    let code = session.exit_code(Duration::from_secs(10));
    let r = read_results(&out);
    assert_eq!(code, 0, "every threshold holds: {}", r["thresholds"]);
    session.assert_terminal_restored();
    let screen = tmux(&["capture-pane", "-p", "-t", &session.0]);
    assert!(
        screen.contains("results: "),
        "the summary is printed after the dashboard:\n{screen}"
    );
    assert_eq!(r["complete"], true);
    assert!(r["totals"]["count"].as_u64().unwrap() > 0);
}

/// A run that ends by itself with a failed threshold exits 99 once q leaves, as `stampede run` does.
#[test]
fn a_run_with_a_failed_threshold_exits_99() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("failed.json");
    let command = format!(
        "NO_COLOR=1 {} run {} --users 2 --duration 1s --set observe.post_load=0s --set 'thresholds.all=[\"p50 < 0.001ms\"]' -o {}",
        env!("CARGO_BIN_EXE_stampede-tui"),
        scenario("ci-smoke.toml").display(),
        out.display()
    );
    let session = Session::start("thresholds", &command);
    wait_long(&session.0, "the run's end", Duration::from_secs(60), |s| {
        s.contains("finished: results in")
    });
    tmux(&["send-keys", "-t", &session.0, "q"]);
    assert_eq!(session.exit_code(Duration::from_secs(10)), 99);
    assert_eq!(read_results(&out)["complete"], true);
}

#[test]
fn q_mid_run_stops_the_load_writes_the_results_marked_incomplete_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("stopped.json");
    let command = format!(
        "NO_COLOR=1 {} run {} --users 10 --duration 60s -o {}",
        env!("CARGO_BIN_EXE_stampede-tui"),
        scenario("ci-smoke.toml").display(),
        out.display()
    );
    let session = Session::start("quit", &command);
    wait_long(&session.0, "the load under way", Duration::from_secs(60), |s| {
        s.contains("steady") || s.contains("3s elapsed")
    });
    tmux(&["send-keys", "-t", &session.0, "q"]);
    assert_eq!(session.exit_code(Duration::from_secs(20)), 130, "interrupted");
    session.assert_terminal_restored();
    let r = read_results(&out);
    assert_eq!(r["complete"], false);
    assert!(r["totals"]["count"].as_u64().unwrap() > 0);
}

#[test]
fn sigterm_and_sigint_stop_a_run_as_q_does() {
    for signal in ["TERM", "INT"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(format!("signalled-{signal}.json"));
        let command = format!(
            "NO_COLOR=1 {} run {} --users 10 --duration 60s -o {}",
            env!("CARGO_BIN_EXE_stampede-tui"),
            scenario("ci-smoke.toml").display(),
            out.display()
        );
        let session = Session::start(&format!("sig{signal}"), &command);
        wait_long(&session.0, "the load under way", Duration::from_secs(60), |s| {
            s.contains("steady") || s.contains("3s elapsed")
        });
        let pid = tmux(&["list-panes", "-t", &session.0, "-F", "#{pane_pid}"]);
        // The pane runs `sh -c`; the dashboard is its child.
        let kill = Command::new("pkill")
            .args([&format!("-{signal}"), "-P", pid.trim(), "-f", "stampede-tui"])
            .status()
            .unwrap();
        assert!(kill.success(), "pkill found the dashboard");
        assert_eq!(
            session.exit_code(Duration::from_secs(20)),
            130,
            "SIG{signal}: interrupted"
        );
        session.assert_terminal_restored();
        let r = read_results(&out);
        assert_eq!(r["complete"], false, "SIG{signal}");
        assert!(r["totals"]["count"].as_u64().unwrap() > 0);
    }
}

#[test]
fn attach_follows_a_run_to_its_end_and_q_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("attached.json");
    let live = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let tui = format!("NO_COLOR=1 {} attach {live}", env!("CARGO_BIN_EXE_stampede-tui"));
    let session = Session::start("attach", &tui);
    wait_for(&session.0, "no run at");
    let screen = tmux(&["capture-pane", "-p", "-t", &session.0]);
    assert!(!screen.contains("ramp-up"), "no run: no phase to show:\n{screen}");

    let mut run = Command::new(bin_dir().join("stampede"))
        .arg("run")
        .arg(scenario("ci-smoke.toml"))
        .args([
            "--users",
            "10",
            "--duration",
            "3s",
            "--set",
            "observe.post_load=1s",
            "--quiet",
        ])
        .arg("--live")
        .arg(live.to_string())
        .arg("-o")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_long(&session.0, "the run attached", Duration::from_secs(60), |s| {
        s.contains("ATTACHED") && s.contains("ci-smoke")
    });
    assert!(run.wait().unwrap().success());
    wait_long(&session.0, "the run's end", Duration::from_secs(15), |s| {
        s.contains("the run has finished") || s.contains("has ended")
    });
    assert_eq!(read_results(&out)["complete"], true);
    tmux(&["send-keys", "-t", &session.0, "q"]);
    assert_eq!(session.exit_code(Duration::from_secs(10)), 0);
    session.assert_terminal_restored();
}
