//! docs/gateway.md's walkthrough of the reference gateway, run as written — twice, on the same data directory,
//! as a person would run it again the next day — and every output it shows checked against what the
//! gateway answers (`…` stands for anything). Only the parts a test cannot take literally are
//! replaced: `make gateway` (the built binary on a free port), `target/release/` (this build) and the
//! session id of the SSE example (the one the stream announced).

use std::process::{Command, Stdio};
use std::time::Duration;

/// One step of the walkthrough: a shell command and the output lines shown under it.
#[derive(Debug)]
struct Step {
    command: String,
    /// Expected lines on the command's output.
    shown: Vec<String>,
    /// Expected lines on the SSE stream (after "and on the stream:").
    on_stream: Vec<String>,
}

/// The shell blocks of docs/gateway.md's "The reference gateway" section, as steps. An output line is a `# `
/// line right under a command (up to a blank line); other comments are prose.
fn walkthrough() -> Vec<Step> {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/gateway.md")).unwrap();
    let section = page
        .split("\n## The reference gateway\n")
        .nth(1)
        .and_then(|s| s.split("\nJSON-RPC methods:").next())
        .expect("docs/gateway.md has the gateway walkthrough");
    let mut steps: Vec<Step> = Vec::new();
    let mut in_block = false;
    let mut output_open = false;
    let mut to_stream = false;
    let mut pending = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            output_open = false;
            continue;
        }
        if !in_block {
            continue;
        }
        if line.trim().is_empty() {
            output_open = false;
            continue;
        }
        if let Some(shown) = line.strip_prefix("# ").or(if line == "#" { Some("") } else { None }) {
            if !output_open {
                continue;
            }
            let step = steps.last_mut().unwrap();
            // "text          (a note)": the note is not output; "and on the stream:" moves on to it.
            let (text, note) = match shown.split_once("   ") {
                Some((t, n)) => (t.trim_end(), n.trim()),
                None => (shown, ""),
            };
            if to_stream {
                step.on_stream.push(text.to_owned());
            } else {
                step.shown.push(text.to_owned());
            }
            if note.contains("on the stream") {
                to_stream = true;
            }
            continue;
        }
        let code = line.split(" # ").next().unwrap().trim_end();
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(code);
        steps.push(Step {
            command: std::mem::take(&mut pending),
            shown: Vec::new(),
            on_stream: Vec::new(),
        });
        output_open = true;
        to_stream = false;
    }
    steps
}

/// `…` matches anything; the rest literally, the whole line.
fn matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split('…').collect();
    let mut rest = line;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part) && rest.len() >= part.len();
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty()
}

/// Every expected line appears in `output`, in order (a stream may carry more, e.g. keepalives).
fn assert_shown(what: &str, expected: &[String], output: &str) {
    let mut lines = output.lines();
    for e in expected {
        assert!(
            lines.any(|l| matches(e, l)),
            "{what}: docs/gateway.md shows {e:?}; the gateway answered:\n{output}"
        );
    }
}

struct Gateway(std::process::Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

fn start_gateway(data: &std::path::Path, port: u16) -> Gateway {
    let gateway = Gateway(
        Command::new(env!("CARGO_BIN_EXE_stampede-gateway"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(data)
            .env_remove("DATABASE_URL")
            // A person waits 30 s for the keepalive docs/gateway.md shows; the test does not.
            .env("SSE_KEEPALIVE_INTERVAL", "0.3")
            .env_remove("JWT_SECRET_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return gateway;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the gateway did not start");
}

fn run_walkthrough(steps: &[Step], port: u16, work: &std::path::Path) {
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_stampede-gateway"))
        .parent()
        .unwrap();
    let sample_session = "d867f38c1daa43b9b885c1d568c3cc69";
    let mut script = String::from("set -u\n");
    let mut stream_step = None;
    for (i, step) in steps.iter().enumerate() {
        if step.command.starts_with("make gateway") {
            continue;
        }
        let command = step
            .command
            .replace("127.0.0.1:4444", &format!("127.0.0.1:{port}"))
            .replace("target/release/", &format!("{}/", bin_dir.display()))
            .replace(sample_session, "$SESSION");
        let out = work.join(format!("out-{i}"));
        if command.contains("curl -sN") {
            // The stream runs on while the next commands use its session.
            script.push_str(&format!(
                "{command} > {} 2>&1 &\nSTREAM=$!\n",
                work.join("stream").display()
            ));
            script.push_str(&format!(
                "for _ in $(seq 100); do grep -q session_id= {s} && break; sleep 0.1; done\n\
                 SESSION=$(grep -o 'session_id=[0-9a-f]*' {s} | head -1 | cut -d= -f2)\n",
                s = work.join("stream").display()
            ));
            stream_step = Some(i);
        } else {
            script.push_str(&format!("{command} > {} 2>&1\n", out.display()));
        }
        if !step.on_stream.is_empty() {
            script.push_str("sleep 1\n");
        }
    }
    script.push_str("kill ${STREAM:-} 2>/dev/null; true\n");
    let status = Command::new("bash").arg("-c").arg(&script).status().unwrap();
    assert!(status.success(), "the walkthrough script failed:\n{script}");
    let stream = std::fs::read_to_string(work.join("stream")).unwrap_or_default();
    let here = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .map(|l| {
                l.replace("127.0.0.1:4444", &format!("127.0.0.1:{port}"))
                    .replace(sample_session, "…")
            })
            .collect()
    };
    for (i, step) in steps.iter().enumerate() {
        if step.command.starts_with("make gateway") {
            continue;
        }
        let output = if Some(i) == stream_step {
            stream.clone()
        } else {
            std::fs::read_to_string(work.join(format!("out-{i}"))).unwrap()
        };
        assert_shown(&step.command, &here(&step.shown), &output);
        assert_shown(
            &format!("{} (on the stream)", step.command),
            &here(&step.on_stream),
            &stream,
        );
    }
}

#[test]
fn the_gateway_walkthrough_runs_as_written_twice() {
    let steps = walkthrough();
    assert!(steps.len() >= 9, "{steps:#?}");
    assert!(steps.iter().any(|s| !s.on_stream.is_empty()), "{steps:#?}");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for round in 1..=2 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let gateway = start_gateway(&data, port);
        let work = dir.path().join(format!("round-{round}"));
        std::fs::create_dir_all(&work).unwrap();
        run_walkthrough(&steps, port, &work);
        drop(gateway);
    }
}
