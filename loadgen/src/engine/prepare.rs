//! What prepares a run: the target's clients and endpoint, the setup (pools), the recording series,
//! the run's upstream, where the observers look — everything before the first user starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64};
use std::time::Duration;

use anyhow::Context as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use tokio::sync::watch;

use super::ctx::{Ctx, phase_code};
use super::{models, threads};
use crate::actions::{Env, Slots, conn};
use crate::error::{BadInput, RunError};
use crate::observe::ObserveConfig;
use crate::record::Recorder;
use crate::scenario::{Scenario, UpstreamPlan};
use crate::target::Target;

/// The recording series: one per action, then each action's own extra series (`"<name> reply"`).
pub(super) fn series(scenario: &Scenario) -> (Vec<String>, Vec<Slots>) {
    let mut names: Vec<String> = scenario.actions.iter().map(|a| a.name.clone()).collect();
    let mut slots = Vec::new();
    for (i, a) in scenario.actions.iter().enumerate() {
        let extra = a.series();
        slots.push(Slots::new(i, names.len(), extra.len()));
        names.extend(extra.iter().map(|suffix| format!("{} {suffix}", a.name)));
    }
    (names, slots)
}

/// The client setup, teardown and SSE message posts use (the request loop has its own), with the
/// target's token when there is one, following a redirect only on the target's origin (the token never
/// goes anywhere else); the observers' scrapes use one without (`token: None`).
fn http_client(
    scenario: &Scenario,
    token: Option<&str>,
    tls: Option<&Arc<rustls::ClientConfig>>,
    base: &str,
) -> anyhow::Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).context("token")?,
        );
    }
    let peak = scenario.load.peak().ceil() as usize;
    let mut builder = reqwest::Client::builder();
    if let Some(config) = tls {
        builder = builder.use_preconfigured_tls(rustls::ClientConfig::clone(config));
    }
    let origin = reqwest::Url::parse(base).context("the target's URL")?.origin();
    let redirects = match token {
        Some(_) => reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 || attempt.url().origin() != origin {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }),
        None => reqwest::redirect::Policy::limited(10),
    };
    Ok(builder
        .redirect(redirects)
        .default_headers(headers)
        .timeout(scenario.timeout)
        .connect_timeout(scenario.timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(peak.max(64))
        .tcp_nodelay(true)
        .build()?)
}

/// The TLS configuration a run shares when its target is https:// (a bad `cacert` is bad input).
pub fn tls_config(base: &str, trust: &conn::Trust) -> Result<Option<Arc<rustls::ClientConfig>>, BadInput> {
    if !base.starts_with("https://") {
        return Ok(None);
    }
    Ok(Some(conn::client_config(trust).map_err(BadInput)?))
}

/// The request loop's endpoint from the target's base URL (`http[s]://host:port[/prefix]`), resolved
/// once.
pub(crate) async fn endpoint_of(
    base: &str,
    token: Option<&str>,
    scenario: &Scenario,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(conn::Endpoint, String), RunError> {
    let (rest, default_port) = match (base.strip_prefix("http://"), base.strip_prefix("https://")) {
        (Some(rest), _) => (rest, 80),
        (_, Some(rest)) => (rest, 443),
        _ => return Err(BadInput(format!("{base}: not an http:// or https:// URL")).into()),
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (host, with_port) = match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() && !port.contains(']') => (host, authority.to_owned()),
        _ => (authority, format!("{authority}:{default_port}")),
    };
    let tls = tls
        .map(|config| conn::Tls::new(Arc::clone(config), host))
        .transpose()
        .map_err(BadInput)?;
    let addr = tokio::net::lookup_host(&with_port)
        .await
        .with_context(|| format!("resolving {authority}"))?
        .next()
        .with_context(|| format!("{authority} resolves to no address"))?;
    let endpoint = conn::Endpoint {
        addr,
        host: authority.to_owned(),
        authorization: token.map(|t| format!("Bearer {t}")),
        timeout: scenario.timeout,
        connect_timeout: scenario.timeout.min(Duration::from_secs(10)),
        tls,
        served_by: (scenario.spec.target.served_by_header.as_deref()).map(|h| Arc::from(h.to_ascii_lowercase())),
    };
    let path = path.trim_end_matches('/');
    Ok((
        endpoint,
        if path.is_empty() {
            String::new()
        } else {
            format!("/{path}")
        },
    ))
}

/// The run's upstream MCP server: spawned for it, given, or none.
pub(super) enum RunUpstream {
    None,
    Spawned(crate::upstream_server::spawn::Spawned),
    Given(String),
}

impl RunUpstream {
    pub(super) async fn start(plan: &UpstreamPlan) -> anyhow::Result<RunUpstream> {
        Ok(match plan {
            UpstreamPlan::None => RunUpstream::None,
            UpstreamPlan::Url(url) => RunUpstream::Given(url.clone()),
            UpstreamPlan::Spawn(knobs) => RunUpstream::Spawned(crate::upstream_server::spawn::spawn(knobs).await?),
        })
    }

    pub(super) fn url(&self) -> Option<&str> {
        match self {
            RunUpstream::None => None,
            RunUpstream::Spawned(s) => Some(&s.url),
            RunUpstream::Given(url) => Some(url),
        }
    }

    pub(super) async fn stop(self) -> Option<UpstreamOutput> {
        match self {
            RunUpstream::None => None,
            RunUpstream::Given(url) => Some(UpstreamOutput {
                url,
                spawned: false,
                cpu_seconds: None,
            }),
            RunUpstream::Spawned(s) => {
                let stopped = s.stop().await;
                Some(UpstreamOutput {
                    url: stopped.url,
                    spawned: true,
                    cpu_seconds: stopped.cpu_seconds,
                })
            }
        }
    }
}

/// The upstream a run used.
#[derive(Debug, Clone)]
pub struct UpstreamOutput {
    pub url: String,
    pub spawned: bool,
    /// A spawned upstream's CPU seconds over its life (setup, load, post-load window).
    pub cpu_seconds: Option<f64>,
}

/// The senders of the two stops.
pub(crate) struct Stops {
    pub(super) soft: watch::Sender<bool>,
    pub(super) hard: watch::Sender<bool>,
}

/// Set up the target and everything the users share.
pub(super) async fn prepare(
    scenario: Arc<Scenario>,
    target: &Target,
    upstream: Option<&str>,
    load: threads::Spawner,
) -> Result<(Arc<Ctx>, Stops), RunError> {
    let tls = tls_config(&target.base, &scenario.trust)?;
    let http = http_client(&scenario, target.token.as_deref(), tls.as_ref(), &target.base)?;
    let scrape_http = http_client(&scenario, None, tls.as_ref(), &target.base)?;
    let pools = crate::setup::prepare(&http, &target.base, &scenario, upstream).await?;
    let (endpoint, base_path) = endpoint_of(&target.base, target.token.as_deref(), &scenario, tls.as_ref()).await?;
    let (names, slots) = series(&scenario);
    let cumulative = scenario
        .actions
        .iter()
        .scan(0, |sum, a| {
            *sum += u64::from(a.weight);
            Some(*sum)
        })
        .collect();
    let (soft, soft_stop) = watch::channel(false);
    let (hard, hard_stop) = watch::channel(false);
    let ctx = Ctx {
        env: Env {
            base: target.base.clone(),
            rpc_path: format!("{base_path}/rpc"),
            base_path,
            endpoint,
            token: target.token.clone(),
            http,
            scrape_http,
            recorder: Recorder::new(names.len()),
            timeout: scenario.timeout,
            soft_stop,
            load_ended: AtomicBool::new(false),
        },
        pools,
        // A fresh seed per process, so shards (and repeated runs) do not draw the same choices.
        seed: fastrand::u64(..) ^ u64::from(scenario.shard.index).wrapping_mul(0xA24B_AED4_963E_E407),
        load_duration: scenario.load.duration(),
        budget: models::Budget::new(scenario.load.iterations.map(|n| scenario.shard.part(n as usize) as u64)),
        hard_stop,
        load,
        cumulative,
        slots,
        phase: AtomicU8::new(phase_code(scenario.load.stages[0].phase)),
        level_bits: AtomicU64::new(0f64.to_bits()),
        scenario,
    };
    Ok((Arc::new(ctx), Stops { soft, hard }))
}

/// Where the observers look: the scenario's `[observe]`, filled in for a spawned gateway.
pub(crate) fn observe_config(scenario: &Scenario, target: &Target) -> ObserveConfig {
    if !scenario.observes {
        // Another shard observes the target; this one's figures stay "not measured".
        return ObserveConfig::default();
    }
    let o = &scenario.spec.observe;
    // Replicas are scraped each at its own address (through the proxy a scrape reaches one at random).
    let bases = match target.replica_bases() {
        b if b.is_empty() => vec![target.base.clone()],
        b => b,
    };
    let metrics_urls = match o.metrics.as_deref() {
        Some("") => Vec::new(),
        Some(m) if m.starts_with("http://") || m.starts_with("https://") => vec![m.to_owned()],
        Some(path) => bases.iter().map(|b| format!("{b}{path}")).collect(),
        None => bases.iter().map(|b| format!("{b}/metrics/prometheus")).collect(),
    };
    let spawned_db = match &scenario.target {
        crate::scenario::TargetPlan::Spawn { database_url, .. } => database_url.clone(),
        crate::scenario::TargetPlan::Url(_) => None,
    };
    let postgres = o
        .postgres
        .clone()
        .or(spawned_db)
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
    let pid = o.pid.or_else(|| {
        o.pid_file
            .as_ref()
            .and_then(|f| std::fs::read_to_string(f).ok())
            .and_then(|t| t.trim().parse().ok())
    });
    let pgbouncer = o
        .pgbouncer
        .clone()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"));
    // A target at a URL is on this machine when it is on loopback or its pid is given; elsewhere its
    // port here would be another program's.
    let local = !target.spawned.is_empty() || pid.is_some() || bases.iter().all(|b| is_loopback(b));
    let mut ports: Vec<u16> = match &o.ports {
        Some(ports) => ports.clone(),
        None if local => bases
            .iter()
            .filter_map(|b| reqwest::Url::parse(b).ok()?.port_or_known_default())
            .collect(),
        None => Vec::new(),
    };
    ports.sort_unstable();
    ports.dedup();
    ObserveConfig {
        metrics_urls,
        postgres,
        pgbouncer,
        pids: pid.map_or_else(|| target.pids(), |p| vec![p]),
        children: o.children,
        ports,
    }
}

/// Whether `url`'s host is this machine's loopback.
fn is_loopback(url: &str) -> bool {
    let Some(url) = reqwest::Url::parse(url).ok() else {
        return false;
    };
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_hosts_are_told_apart() {
        for (url, local) in [
            ("http://127.0.0.1:4444", true),
            ("http://localhost:4444/prefix", true),
            ("http://[::1]:4444", true),
            ("https://gateway.example:4444", false),
            ("http://10.0.0.7:4444", false),
            ("not a url", false),
        ] {
            assert_eq!(super::is_loopback(url), local, "{url}");
        }
    }
}
