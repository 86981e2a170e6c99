//! The engine: start the target, set up, drive the load model, keep the timeline, stop on time (or on
//! interrupt), hold the post-load window, and hand back everything the results file needs. What each
//! action does is its kind's (`actions`); the engine picks actions, paces users or arrivals
//! (`models`), and runs the clock (`run_loop`).

mod models;
mod run_loop;
mod threads;
pub mod timeline;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::actions::{Action, Ended, Env, Scratch, Slots, conn};
use crate::data::{Completion, Phase, Sources, StreamFigures};
use crate::observe::ObserveConfig;
use crate::record::Recorder;
use crate::scenario::{Scenario, UpstreamPlan};
use crate::setup::{PoolValues, Pools};
use crate::target::Target;
use timeline::{SnapshotCell, Timeline};

/// Everything a user or worker needs, shared.
pub struct Ctx {
    pub scenario: Arc<Scenario>,
    /// What the actions reach: the target, the recorder, the end of the load.
    pub env: Env,
    pub pools: Pools,
    pub seed: u64,
    pub load_duration: Duration,
    /// Actions left to start, when the load is a number of them (`load.iterations`, `-n`).
    pub budget: models::Budget,
    /// End of the graceful stop: actions still running are cut.
    pub hard_stop: watch::Receiver<bool>,
    /// The threads users run on (`threads.rs`).
    pub load: threads::Spawner,
    cumulative: Vec<u64>,
    /// Recording slots of each action.
    slots: Vec<Slots>,
    phase: AtomicU8,
    level_bits: AtomicU64,
}

fn phase_code(p: Phase) -> u8 {
    match p {
        Phase::RampUp => 0,
        Phase::Steady => 1,
        Phase::RampDown => 2,
        Phase::PostLoad => 3,
    }
}

fn phase_of(code: u8) -> Phase {
    match code {
        0 => Phase::RampUp,
        1 => Phase::Steady,
        2 => Phase::RampDown,
        _ => Phase::PostLoad,
    }
}

impl Ctx {
    /// A weighted random action.
    pub fn pick(&self, rng: &mut fastrand::Rng) -> usize {
        let total = *self.cumulative.last().expect("validated: at least one action");
        let x = rng.u64(0..total);
        self.cumulative.partition_point(|c| *c <= x)
    }

    pub fn set_phase(&self, phase: Phase, level: f64) {
        self.phase.store(phase_code(phase), Ordering::Relaxed);
        self.level_bits.store(level.to_bits(), Ordering::Relaxed);
    }

    pub fn phase(&self) -> (Phase, f64) {
        (
            phase_of(self.phase.load(Ordering::Relaxed)),
            f64::from_bits(self.level_bits.load(Ordering::Relaxed)),
        )
    }

    /// Run action `index` once.
    pub async fn execute(
        &self,
        index: usize,
        rng: &mut fastrand::Rng,
        scratch: &mut Scratch,
        intended: Instant,
    ) -> Ended {
        let action: &Action = &self.scenario.actions[index];
        let mut values = PoolValues {
            pools: &self.pools,
            rng,
            unique: [0; 16],
        };
        let in_flight = &self.env.recorder.gauges.in_flight;
        in_flight.add(1);
        let _done = InFlight(in_flight);
        let slots = self.slots[index];
        let running = Running {
            recorder: &self.env.recorder,
            slot: slots.main,
        };
        let ended = action.plan.run(&self.env, slots, &mut values, scratch, intended).await;
        std::mem::forget(running);
        ended
    }
}

/// The recording series: one per action, then each action's own extra series (`"<name> reply"`).
fn series(scenario: &Scenario) -> (Vec<String>, Vec<Slots>) {
    let mut names: Vec<String> = scenario.actions.iter().map(|a| a.name.clone()).collect();
    let mut slots = Vec::new();
    for (i, a) in scenario.actions.iter().enumerate() {
        let extra = a.series();
        slots.push(Slots::new(i, names.len(), extra.len()));
        names.extend(extra.iter().map(|suffix| format!("{} {suffix}", a.name)));
    }
    (names, slots)
}

/// The client setup, teardown, the observers and SSE message posts use (the request loop has its own).
fn http_client(
    scenario: &Scenario,
    token: Option<&str>,
    tls: Option<&Arc<rustls::ClientConfig>>,
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
    Ok(builder
        .default_headers(headers)
        .timeout(scenario.timeout)
        .connect_timeout(scenario.timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(peak.max(64))
        .tcp_nodelay(true)
        .build()?)
}

/// The TLS configuration a run shares when its target is https:// (a bad `cacert` is bad input).
pub fn tls_config(base: &str, trust: &conn::Trust) -> anyhow::Result<Option<Arc<rustls::ClientConfig>>> {
    if !base.starts_with("https://") {
        return Ok(None);
    }
    Ok(Some(conn::client_config(trust).map_err(crate::target::BadInput)?))
}

/// The request loop's endpoint from the target's base URL (`http[s]://host:port[/prefix]`), resolved
/// once.
pub(crate) async fn endpoint_of(
    base: &str,
    token: Option<&str>,
    scenario: &Scenario,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> anyhow::Result<(conn::Endpoint, String)> {
    let (rest, default_port) = match (base.strip_prefix("http://"), base.strip_prefix("https://")) {
        (Some(rest), _) => (rest, 80),
        (_, Some(rest)) => (rest, 443),
        _ => anyhow::bail!("{base}: not an http:// or https:// URL"),
    };
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let (host, with_port) = match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() && !port.contains(']') => (host, authority.to_owned()),
        _ => (authority, format!("{authority}:{default_port}")),
    };
    let tls = tls
        .map(|config| conn::Tls::new(Arc::clone(config), host))
        .transpose()
        .map_err(crate::target::BadInput)?;
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

/// An action under way: counted aborted when dropped unfinished, i.e. when the hard stop aborts its
/// user's task. The hard stop aborts tasks rather than racing every action against a watch channel, so
/// an action costs no waiter registered and removed on a channel every user shares.
struct Running<'a> {
    recorder: &'a crate::record::Recorder,
    slot: usize,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.recorder.abort(self.slot);
    }
}

/// Decrements the in-flight gauge however the action ends (aborted included).
struct InFlight<'a>(&'a crate::record::SpreadGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.add(-1);
    }
}

/// What a finished run hands to the results file.
pub struct RunOutput {
    pub scenario: Arc<Scenario>,
    pub target_base: String,
    /// The spawned gateways' processes (empty for a target at a URL).
    pub target_pids: Vec<u32>,
    pub spawned: bool,
    /// The proxy started in front of them (`nginx`), if any.
    pub proxy: Option<String>,
    pub started_at: SystemTime,
    /// When the load started: after the setup, at the scenario's `start_at` when it has one.
    pub load_started_at: SystemTime,
    pub completion: Completion,
    pub slots: Vec<String>,
    pub timeline: Timeline,
    pub sse: StreamFigures,
    pub mcp: StreamFigures,
    pub pools: serde_json::Value,
    pub load_seconds: f64,
    pub dropped: u64,
    pub observer_sources: Sources,
    /// Generator CPU seconds (this process) over the load.
    pub generator_cpu_s: Option<f64>,
    pub generator_peak_rss_bytes: Option<u64>,
    pub upstream: Option<UpstreamOutput>,
}

/// Options of one run besides the scenario.
#[derive(Clone, Default)]
pub struct RunOptions {
    /// Receives every snapshot (progress line, live feed, dashboard).
    pub snapshots: Option<SnapshotCell>,
}

/// Run `scenario`; `interrupt` turning true stops the load early (the run is then marked interrupted).
pub async fn run(
    scenario: Scenario,
    options: RunOptions,
    mut interrupt: watch::Receiver<bool>,
) -> anyhow::Result<RunOutput> {
    let scenario = Arc::new(scenario);
    // Every connection is a file: whoever runs a scenario (run, gate --run, baseline, the dashboard,
    // the bench) gets the hard limit, not a soft 1024.
    let _ = crate::host::raise_open_files_limit();
    let started_at = SystemTime::now();
    let mut target = Target::prepare(&scenario).await?;
    let result = async {
        let upstream = RunUpstream::start(&scenario.upstream).await?;
        let output = async {
            let threads = threads::LoadThreads::start().context("starting the load threads")?;
            let (ctx, stops) = prepare(Arc::clone(&scenario), &target, upstream.url(), threads.spawner()).await?;
            wait_for_start(&scenario, &mut interrupt).await;
            let output = run_loop::RunLoop::start(ctx, stops, &target, options, started_at)
                .drive(&mut interrupt)
                .await;
            // After the teardown (whose client may have connections the users' threads drive).
            let _ = tokio::task::spawn_blocking(move || drop(threads)).await;
            Ok::<_, anyhow::Error>(output)
        }
        .await;
        let upstream = upstream.stop().await;
        output.map(|o| RunOutput { upstream, ..o })
    }
    .await;
    target.stop().await;
    result
}

/// Wait for the scenario's common start, if it has one that is still ahead (a shard that comes late
/// starts at once; its results say how late). An interrupt ends the wait.
async fn wait_for_start(scenario: &Scenario, interrupt: &mut watch::Receiver<bool>) {
    let Some(ahead) = scenario
        .start_at
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
    else {
        return;
    };
    tracing::info!("waiting {:.1} s for the common start", ahead.as_secs_f64());
    tokio::select! {
        _ = tokio::time::sleep(ahead) => {}
        _ = interrupt.wait_for(|i| *i) => {}
    }
}

/// The run's upstream MCP server: spawned for it, given, or none.
enum RunUpstream {
    None,
    Spawned(crate::upstream_server::spawn::Spawned),
    Given(String),
}

impl RunUpstream {
    async fn start(plan: &UpstreamPlan) -> anyhow::Result<RunUpstream> {
        Ok(match plan {
            UpstreamPlan::None => RunUpstream::None,
            UpstreamPlan::Url(url) => RunUpstream::Given(url.clone()),
            UpstreamPlan::Spawn(knobs) => RunUpstream::Spawned(crate::upstream_server::spawn::spawn(knobs).await?),
        })
    }

    fn url(&self) -> Option<&str> {
        match self {
            RunUpstream::None => None,
            RunUpstream::Spawned(s) => Some(&s.url),
            RunUpstream::Given(url) => Some(url),
        }
    }

    async fn stop(self) -> Option<UpstreamOutput> {
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
    soft: watch::Sender<bool>,
    hard: watch::Sender<bool>,
}

/// Set up the target and everything the users share.
async fn prepare(
    scenario: Arc<Scenario>,
    target: &Target,
    upstream: Option<&str>,
    load: threads::Spawner,
) -> anyhow::Result<(Arc<Ctx>, Stops)> {
    let tls = tls_config(&target.base, &scenario.trust)?;
    let http = http_client(&scenario, target.token.as_deref(), tls.as_ref())?;
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
fn observe_config(scenario: &Scenario, target: &Target) -> ObserveConfig {
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
    ObserveConfig {
        metrics_urls,
        postgres,
        pgbouncer,
        pids: pid.map_or_else(|| target.pids(), |p| vec![p]),
        children: o.children,
    }
}
