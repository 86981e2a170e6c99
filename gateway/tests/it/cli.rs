//! The `stampede-gateway` binary as a person meets it: a closed pipe, a startup error, a log file.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

fn gateway() -> Command {
    Command::new(env!("CARGO_BIN_EXE_stampede-gateway"))
}

#[test]
fn a_token_into_a_closed_pipe_is_not_a_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = gateway()
        .arg("token")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_startup_error_is_one_line_even_with_rust_backtrace_set() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = gateway()
        .args([
            "serve",
            "--bind",
            &taken.local_addr().unwrap().to_string(),
            "--data-dir",
        ])
        .arg(dir.path())
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = err.lines().filter(|l| l.contains("stampede-gateway:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("binding"), "{err}");
    assert!(!err.contains("Stack backtrace") && !err.contains("backtrace"), "{err}");
}

#[test]
fn a_log_written_to_a_file_has_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
    let mut child = gateway()
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("stampede-gateway listening on http://"), "{first}");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let text = std::fs::read_to_string(dir.path().join("gateway.log")).unwrap();
    assert!(text.contains("serving"), "{text}");
    assert!(!text.contains('\x1b'), "no ANSI escape codes in a log file:\n{text}");
}

#[test]
fn a_reachable_address_with_the_default_secret_is_refused_with_how_to_set_one() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |secret: Option<&str>| {
        let mut cmd = gateway();
        cmd.args(["serve", "--bind", "0.0.0.0:0", "--data-dir"])
            .arg(dir.path())
            .env_remove("JWT_SECRET_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(s) = secret {
            cmd.env("JWT_SECRET_KEY", s);
        }
        cmd.spawn().unwrap()
    };
    let out = serve(None).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("default JWT secret") && err.contains("set JWT_SECRET_KEY"),
        "{err}"
    );
    assert!(!dir.path().join("gateway.db").exists() || out.stdout.is_empty());

    // An empty or a short secret can be guessed as easily.
    for (weak, says) in [("", "an empty JWT secret"), ("short-secret", "shorter than 32 bytes")] {
        let out = serve(Some(weak)).wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{weak:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says) && err.contains("set JWT_SECRET_KEY"), "{err}");
    }

    // With a secret of its own it serves there.
    let mut child = serve(Some("a-secret-of-its-own-32-bytes-long"));
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.contains("listening on http://0.0.0.0:"), "{first}");
}

#[test]
fn a_reachable_address_without_authentication_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = gateway()
        .args(["serve", "--bind", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env("JWT_SECRET_KEY", "a-secret-of-its-own-32-bytes-long")
        .env("AUTH_REQUIRED", "false")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AUTH_REQUIRED=false") && err.contains("loopback only"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "it did not serve");
}
