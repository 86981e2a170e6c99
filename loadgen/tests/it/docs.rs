//! Every command README.md and docs/ mark runnable runs as written: each ```sh block that follows a
//! `<!-- runnable -->` line is run with `bash -euo pipefail` from the repository root, with the built
//! binaries first on PATH, a spawned reference gateway where the text says `127.0.0.1:4444` (and a
//! free port where it says `127.0.0.1:9400`, the live feed's example address), its secret in
//! JWT_SECRET_KEY and a scratch `$TMPDIR`. The ports are the one thing changed, so tests running at
//! once do not collide. README stays a front page: at most 15,000 bytes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Block {
    place: String,
    script: String,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The runnable blocks of one Markdown file, each named by its file and line.
fn blocks(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "<!-- runnable -->" {
            assert_eq!(
                lines.get(i + 1).map(|l| l.trim()),
                Some("```sh"),
                "{}:{}: a runnable mark must sit right above a ```sh block",
                path.display(),
                i + 1
            );
            let start = i + 2;
            let end = (start..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .unwrap_or_else(|| panic!("{}:{}: the block is not closed", path.display(), i + 2));
            out.push(Block {
                place: format!("{}:{}", path.strip_prefix(root()).unwrap_or(path).display(), start),
                script: lines[start..end].join("\n"),
            });
            i = end;
        }
        i += 1;
    }
    out
}

#[test]
fn readme_is_a_front_page() {
    let size = std::fs::metadata(root().join("README.md")).unwrap().len();
    assert!(size <= 15_000, "README.md is {size} bytes: references belong in docs/");
}

#[test]
fn every_runnable_block_runs_as_written() {
    let mut files = vec![root().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let all: Vec<Block> = files.iter().flat_map(|f| blocks(f)).collect();
    assert!(
        all.iter().filter(|b| b.place.starts_with("README.md")).count() >= 1,
        "README has a runnable block"
    );
    assert!(all.len() >= 8, "{} runnable blocks", all.len());

    let secret = format!("docs-{}", std::process::id());
    let gw = testkit::spawn_gateway(&secret, &[]);
    let gateway = gw.url.trim_start_matches("http://").to_owned();
    let bin = Path::new(env!("CARGO_BIN_EXE_stampede")).parent().unwrap().to_owned();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .unwrap();
    let mut failures = Vec::new();
    for block in &all {
        let live = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string();
        let script = block
            .script
            .replace("127.0.0.1:4444", &gateway)
            .replace("127.0.0.1:9400", &live);
        let scratch = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let mut child = Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(root())
            .env("PATH", &path)
            .env("TMPDIR", scratch.path())
            .env("JWT_SECRET_KEY", &secret)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Each block is short; one that hangs fails with its place instead of stalling the suite.
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(90) {
                let _ = child.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        eprintln!(
            "{}: exit {:?} in {:.1} s",
            block.place,
            out.status.code(),
            started.elapsed().as_secs_f64()
        );
        if !out.status.success() {
            failures.push(format!(
                "{} (exit {:?}):\n{}\n--- stdout\n{}\n--- stderr\n{}",
                block.place,
                out.status.code(),
                block.script,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "blocks that do not run as written:\n\n{}",
        failures.join("\n\n")
    );
}
