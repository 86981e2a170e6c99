//! The target of a run: an existing gateway at a URL, or reference gateways started as child
//! processes (never linked in, so their CPU and memory are measured apart) and stopped at the end —
//! one, or several replicas on one PostgreSQL behind an nginx the run starts too. Also the bearer
//! token the load carries.

mod gateway;
mod nginx;

use std::time::{SystemTime, UNIX_EPOCH};

pub use crate::error::BadInput;
use crate::error::RunError;
use crate::scenario::{AuthPlan, Scenario, TargetPlan};
pub use gateway::Spawned;
pub use nginx::Nginx;

pub struct Target {
    /// Base URL without a trailing slash: the gateway's, or the proxy's in front of the replicas.
    pub base: String,
    pub token: Option<String>,
    /// The gateways this run started (empty for a target at a URL).
    pub spawned: Vec<Spawned>,
    pub proxy: Option<Nginx>,
}

impl Target {
    /// Start or find the target and settle the token.
    pub async fn prepare(s: &Scenario) -> Result<Target, RunError> {
        match &s.target {
            TargetPlan::Url(url) => Ok(Target {
                base: url.clone(),
                token: token_for(&s.auth, None)?,
                spawned: Vec::new(),
                proxy: None,
            }),
            TargetPlan::Spawn {
                profile,
                env,
                database_url,
                replicas,
                proxy,
                balance,
            } => {
                let secret = uuid::Uuid::new_v4().simple().to_string();
                let mut env = env.clone();
                // Replicas find each other's sessions on the session bus, by default on their database
                // (a scenario whose database is a transaction-pooling PgBouncer names a direct one).
                if *replicas > 1 && !env.iter().any(|(k, _)| k == "SESSION_BUS_URL") {
                    env.extend(database_url.clone().map(|u| ("SESSION_BUS_URL".to_owned(), u)));
                }
                let mut spawned = Vec::new();
                for i in 1..=*replicas {
                    // Named for the results' per-replica counts (`x-served-by`), unless the scenario names them.
                    let mut env = env.clone();
                    if *replicas > 1 && !env.iter().any(|(k, _)| k == "REPLICA_NAME") {
                        env.push(("REPLICA_NAME".to_owned(), format!("replica-{i}")));
                    }
                    spawned.push(gateway::spawn(*profile, &env, database_url.as_deref(), &secret).await?);
                }
                let (base, proxy) = match proxy {
                    Some(crate::scenario::ProxyKind::Nginx) => {
                        let upstreams: Vec<&str> = spawned.iter().map(|g| g.base.as_str()).collect();
                        let nginx = Nginx::start(nginx::binary_or_bad_input()?, &upstreams, *balance).await?;
                        (nginx.base.clone(), Some(nginx))
                    }
                    None => (spawned[0].base.clone(), None),
                };
                Ok(Target {
                    base,
                    token: token_for(&s.auth, Some(&secret))?,
                    spawned,
                    proxy,
                })
            }
        }
    }

    /// The local processes whose CPU is the target's: every spawned gateway (not the proxy).
    pub fn pids(&self) -> Vec<u32> {
        self.spawned.iter().map(|s| s.pid).collect()
    }

    /// Where each spawned gateway serves its own metrics (behind a proxy, a scrape of the proxy's
    /// address would reach one replica at random).
    pub fn replica_bases(&self) -> Vec<String> {
        self.spawned.iter().map(|s| s.base.clone()).collect()
    }

    /// Stop the proxy and the spawned gateways (SIGTERM, then kill after 10 s); nothing for an
    /// existing one. The first gateway's exit status.
    pub async fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Some(mut proxy) = self.proxy.take() {
            proxy.stop().await;
        }
        // All asked at once, so replicas drain side by side.
        self.spawned.iter().for_each(Spawned::terminate);
        let mut first = None;
        for spawned in &mut self.spawned {
            let status = spawned.wait().await;
            first = first.or(status);
        }
        first
    }
}

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

/// Files this process keeps for itself besides the users' connections: the runtime, the live feed,
/// observers, setup's client, spawned children's pipes.
const OWN_FILES: u64 = 64;

/// Raise the open-file limit to the hard limit and, when the load's connections still do not fit in
/// it, say so before the load starts: connects beyond it fail (`connect errors`), and a run that
/// meant 20,000 users would measure fewer.
pub fn open_files_warning(s: &Scenario) -> Option<String> {
    let limit = crate::host::raise_open_files_limit()?;
    let (connections, what) = match s.load.model {
        crate::scenario::Model::Closed => (s.shard.part(s.load.peak().round().max(0.0) as usize) as u64, "users"),
        crate::scenario::Model::Open => (s.shard.part(s.load.max_in_flight as usize) as u64, "max_in_flight"),
    };
    (connections + OWN_FILES > limit).then(|| {
        format!(
            "stampede: warning: {connections} {what} need at least {connections} open files and the limit is {limit} \
             (ulimit -n; raised to the hard limit already): connects beyond it fail and are counted as connect errors. \
             Raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower the load."
        )
    })
}

/// The token the load carries: a given one, one from the environment, or one minted.
fn token_for(auth: &AuthPlan, spawned_secret: Option<&str>) -> Result<Option<String>, RunError> {
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
