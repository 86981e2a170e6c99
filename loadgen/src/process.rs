//! The processes stampede starts — the reference gateway, its own upstream MCP server — found next to
//! the running binary, and the one line each prints once it accepts connections.

use std::path::PathBuf;
use std::time::Duration;

/// Ask a child to stop (SIGTERM: a server drains, nginx quits).
pub fn terminate(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// A child's exit within `grace` of [`terminate`], killed when it lingers.
pub async fn wait_or_kill(child: &mut tokio::process::Child, grace: Duration) -> Option<std::process::ExitStatus> {
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        _ => {
            let _ = child.kill().await;
            child.wait().await.ok()
        }
    }
}

/// The URL in a server's first line, `<name> listening on http://ADDR` — what the gateway, the bench's
/// servers and anything else stampede starts print once they accept connections.
pub fn listening_url(line: &str) -> Option<&str> {
    let (_, url) = line.split_once("listening on ")?;
    Some(url.trim()).filter(|u| u.starts_with("http://"))
}

/// The `stampede-gateway` binary: `$STAMPEDE_GATEWAY_BIN`, beside this executable (or one folder up,
/// for test binaries), or on PATH.
pub fn gateway_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("STAMPEDE_GATEWAY_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("stampede-gateway");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("stampede-gateway")
}

/// The `stampede` binary (for `stampede upstream`): `$STAMPEDE_BIN`, this executable when it is `stampede`, beside it
/// (the dashboard, a test), or on PATH.
pub fn stampede_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("STAMPEDE_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(exe) = std::env::current_exe() {
        if exe.file_name().is_some_and(|n| n == "stampede") {
            return exe;
        }
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join("stampede");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    PathBuf::from("stampede")
}
