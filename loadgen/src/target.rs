//! The target of a run: an existing gateway at a URL, or the reference gateway started as a child
//! process (never linked in, so its CPU and memory are measured apart) and stopped at the end. Also
//! the bearer token the load carries.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::scenario::{AuthPlan, GatewayProfile, Scenario, TargetPlan};

/// A gateway this run started.
pub struct Spawned {
    child: Child,
    pub pid: u32,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

pub struct Target {
    /// Base URL without a trailing slash.
    pub base: String,
    pub token: Option<String>,
    pub spawned: Option<Spawned>,
}

impl Target {
    /// Start or find the target and settle the token.
    pub async fn prepare(s: &Scenario) -> anyhow::Result<Target> {
        match &s.target {
            TargetPlan::Url(url) => Ok(Target {
                base: url.clone(),
                token: token_for(&s.auth, None)?,
                spawned: None,
            }),
            TargetPlan::Spawn {
                profile,
                env,
                database_url,
            } => {
                let secret = uuid::Uuid::new_v4().simple().to_string();
                let (spawned, base) = spawn_gateway(*profile, env, database_url.as_deref(), &secret).await?;
                Ok(Target {
                    base,
                    token: token_for(&s.auth, Some(&secret))?,
                    spawned: Some(spawned),
                })
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.spawned.as_ref().map(|s| s.pid)
    }

    /// Stop a spawned gateway (SIGTERM, then kill after 10 s); nothing for an existing one.
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let spawned = self.spawned.as_mut()?;
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &spawned.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(10), spawned.child.wait()).await {
            Ok(Ok(status)) => Some(status),
            _ => {
                let _ = spawned.child.kill().await;
                spawned.child.wait().await.ok()
            }
        }
    }
}

/// A mistake in what the run was given (not in the target): the front ends exit 2 on it, as on a bad
/// scenario file.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Check what the run needs from its environment before anything starts (a variable named by
/// `token_env` or `jwt_secret_env` that is not set).
pub fn check_environment(s: &Scenario) -> Result<(), BadInput> {
    let (field, var) = match &s.auth {
        AuthPlan::TokenEnv(var) => ("target.token_env", var),
        AuthPlan::JwtSecretEnv(var) => ("target.jwt_secret_env", var),
        AuthPlan::None | AuthPlan::Token(_) => return Ok(()),
    };
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(()),
        _ => Err(BadInput(format!("{field}: the environment variable ${var} is not set"))),
    }
}

/// The token the load carries: a given one, one from the environment, or one minted.
fn token_for(auth: &AuthPlan, spawned_secret: Option<&str>) -> anyhow::Result<Option<String>> {
    Ok(match auth {
        AuthPlan::Token(t) => Some(t.clone()),
        AuthPlan::TokenEnv(var) => Some(
            std::env::var(var)
                .map_err(|_| BadInput(format!("target.token_env: the environment variable ${var} is not set")))?,
        ),
        AuthPlan::JwtSecretEnv(var) => {
            let secret = std::env::var(var).map_err(|_| {
                BadInput(format!(
                    "target.jwt_secret_env: the environment variable ${var} is not set"
                ))
            })?;
            Some(mint(&secret)?)
        }
        AuthPlan::None => spawned_secret.map(mint).transpose()?,
    })
}

/// An HS256 token with the original gateway's default audience and issuer, valid for a day.
pub fn mint(secret: &str) -> anyhow::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = serde_json::json!({
        "sub": "stampede@example.com",
        "iat": now,
        "exp": now + 24 * 3600,
        "aud": "mcpgateway-api",
        "iss": "mcpgateway",
    });
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

async fn spawn_gateway(
    profile: GatewayProfile,
    env: &[(String, String)],
    database_url: Option<&str>,
    secret: &str,
) -> anyhow::Result<(Spawned, String)> {
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
    Ok((
        Spawned {
            child,
            pid,
            log,
            _dir: dir,
        },
        base,
    ))
}
