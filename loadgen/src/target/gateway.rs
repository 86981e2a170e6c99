//! One reference gateway started as a child process: its own temporary directory (data, log), the
//! address it announces on its first line, and its stop.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::scenario::GatewayProfile;

/// A gateway this run started.
pub struct Spawned {
    child: Child,
    pub pid: u32,
    /// Where it listens, without a trailing slash.
    pub base: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Spawned {
    /// Ask it to stop (SIGTERM: it drains).
    pub fn terminate(&self) {
        crate::process::terminate(self.pid);
    }

    /// Its exit, killing it when it has not stopped within 10 s of [`Self::terminate`].
    pub async fn wait(&mut self) -> Option<std::process::ExitStatus> {
        crate::process::wait_or_kill(&mut self.child, Duration::from_secs(10)).await
    }
}

pub async fn spawn(
    profile: GatewayProfile,
    env: &[(String, String)],
    database_url: Option<&str>,
    secret: &str,
) -> anyhow::Result<Spawned> {
    let dir = tempfile::Builder::new().prefix("stampede-gateway-").tempdir()?;
    let log = dir.path().join("gateway.log");
    let bin = crate::process::gateway_binary();
    let mut cmd = Command::new(&bin);
    cmd.arg("serve")
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--profile",
            match profile {
                GatewayProfile::Fixed => "fixed",
                GatewayProfile::Legacy => "legacy",
            },
        ])
        .env("JWT_SECRET_KEY", secret)
        .env("RUST_LOG", "warn")
        // A gateway stampede starts federates stampede's own upstream, on this machine; a scenario's
        // `[target.env]` may say otherwise.
        .env("OUTBOUND_ALLOW", "loopback")
        .env_remove("DATABASE_URL")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true);
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "starting {} (build the workspace, or set STAMPEDE_GATEWAY_BIN)",
            bin.display()
        )
    })?;
    let pid = child.id().context("the gateway exited at once")?;
    let stdout = child.stdout.take().context("gateway stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("the gateway did not start within 30 s")??;
    let Some(line) = line else {
        let log_text = std::fs::read_to_string(&log).unwrap_or_default();
        bail!("the gateway exited before listening:\n{log_text}");
    };
    let base = crate::process::listening_url(&line)
        .with_context(|| format!("unexpected first line from the gateway: {line}"))?
        .to_owned();
    Ok(Spawned {
        child,
        pid,
        base,
        log,
        _dir: dir,
    })
}
