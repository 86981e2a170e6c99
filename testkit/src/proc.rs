//! Our servers as child processes that announce their URL on their first line
//! (`… listening on http://ADDR`), killed when the test is done with them.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

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
    first
        .split_once("listening on ")
        .map(|(_, url)| url.trim())
        .filter(|url| url.starts_with("http://"))
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_owned()
}

/// `stampede upstream` with `args`.
pub fn spawn_upstream(args: &[&str]) -> Proc {
    let mut child = Command::new(crate::bin::path("stampede"))
        .arg("upstream")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start stampede upstream");
    let url = first_line_url(&mut child);
    Proc { child, url, _dir: None }
}

/// The reference gateway on SQLite in a temp dir, with this JWT secret and these settings (none taken
/// from the environment the tests run in).
pub fn spawn_gateway(secret: &str, env: &[(&str, &str)]) -> Proc {
    spawn_gateway_with(&[], Some(secret), env)
}

/// [`spawn_gateway`] with `args` after `serve` (`--profile legacy`), and with the default JWT secret
/// when `secret` is `None`, as a user who sets none runs it.
pub fn spawn_gateway_with(args: &[&str], secret: Option<&str>, env: &[(&str, &str)]) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(crate::bin::path("stampede-gateway"));
    cmd.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(args)
        .env_remove("JWT_SECRET_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("GATEWAY_ACTIVATION_IO_MS")
        .env("OUTBOUND_ALLOW", "loopback")
        .envs(secret.map(|s| ("JWT_SECRET_KEY", s)))
        .envs(env.iter().copied())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let url = first_line_url(&mut child);
    Proc {
        child,
        url,
        _dir: Some(dir),
    }
}
