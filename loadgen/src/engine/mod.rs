//! The engine: start the target, set up, drive the load model, keep the timeline, stop on time (or on
//! interrupt), hold the post-load window, and hand back everything the results file needs.

mod conn;
mod exec;
mod models;
mod sse;
pub mod timeline;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::data::{Completion, Phase, Snapshot, Sources, SseFigures, Window};
use crate::observe::{ObserveConfig, Observers};
use crate::record::Recorder;
use crate::scenario::{Action, ActionPlan, Model, Scenario};
use crate::setup::{PoolValues, Pools};
use crate::target::Target;
pub use exec::{Backoff, Ended};
use timeline::{SnapshotCell, Timeline, sse_figures};

/// Everything a user or worker needs, shared.
pub struct Ctx {
    pub scenario: Arc<Scenario>,
    pub base: String,
    /// The base URL's path (usually empty), which request targets start with.
    pub base_path: String,
    pub rpc_path: String,
    /// Where the request loop's own connections go.
    pub endpoint: conn::Endpoint,
    pub token: Option<String>,
    pub http: reqwest::Client,
    pub pools: Pools,
    pub recorder: Recorder,
    pub timeout: Duration,
    pub seed: u64,
    pub load_duration: Duration,
    /// End of the load: users stop starting actions.
    pub soft_stop: watch::Receiver<bool>,
    /// End of the graceful stop: actions still running are cut.
    pub hard_stop: watch::Receiver<bool>,
    cumulative: Vec<u64>,
    /// Recording slot of each action, and of its SSE replies.
    slot_of: Vec<(usize, Option<usize>)>,
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
        scratch: &mut exec::Scratch,
        intended: Instant,
    ) -> Ended {
        let action: &Action = &self.scenario.actions[index];
        let (slot, reply_slot) = self.slot_of[index];
        let mut values = PoolValues {
            pools: &self.pools,
            rng,
        };
        let in_flight = &self.recorder.gauges.in_flight;
        in_flight.fetch_add(1, Ordering::Relaxed);
        let _done = InFlight(in_flight);
        match &action.plan {
            ActionPlan::Sse {
                path,
                requests,
                hold,
                close,
                rst,
            } => {
                let a = sse::SseAction {
                    path,
                    requests,
                    hold: *hold,
                    close: *close,
                    rst: *rst,
                    slot,
                    reply_slot,
                };
                // Boxed: an SSE session's state is large, and unboxed it would size every user's
                // task, HTTP-only ones included.
                Box::pin(sse::run(self, &a, &mut values, &mut scratch.url, intended)).await
            }
            plan => exec::http_or_rpc(self, slot, plan, &mut values, scratch, intended).await,
        }
    }
}

/// The request loop's endpoint from the target's base URL (`http://host:port[/prefix]`), resolved once.
async fn endpoint_of(base: &str, token: Option<&str>, scenario: &Scenario) -> anyhow::Result<(conn::Endpoint, String)> {
    let rest = base
        .strip_prefix("http://")
        .with_context(|| format!("{base}: the request loop speaks plain http:// only"))?;
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
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

/// Decrements the in-flight gauge however the action ends (cut included).
struct InFlight<'a>(&'a std::sync::atomic::AtomicI64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What a finished run hands to the results file.
pub struct RunOutput {
    pub scenario: Arc<Scenario>,
    pub target_base: String,
    pub target_pid: Option<u32>,
    pub spawned: bool,
    pub started_at: SystemTime,
    pub completion: Completion,
    pub slots: Vec<String>,
    pub timeline: Timeline,
    pub sse: SseFigures,
    pub pools: serde_json::Value,
    pub load_seconds: f64,
    pub cut: u64,
    pub dropped: u64,
    pub observer_sources: Sources,
    /// Generator CPU seconds (this process) over the load.
    pub generator_cpu_s: Option<f64>,
    pub generator_peak_rss_bytes: Option<u64>,
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
    let started_at = SystemTime::now();
    let mut target = Target::prepare(&scenario).await?;
    let result = drive(Arc::clone(&scenario), &target, options, &mut interrupt, started_at).await;
    target.stop().await;
    result
}

async fn drive(
    scenario: Arc<Scenario>,
    target: &Target,
    options: RunOptions,
    interrupt: &mut watch::Receiver<bool>,
    started_at: SystemTime,
) -> anyhow::Result<RunOutput> {
    let mut headers = HeaderMap::new();
    if let Some(token) = &target.token {
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).context("token")?,
        );
    }
    let peak = scenario.load.peak().ceil() as usize;
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(scenario.timeout)
        .connect_timeout(scenario.timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(peak.max(64))
        .tcp_nodelay(true)
        .build()?;
    let pools = crate::setup::prepare(&http, &target.base, &scenario).await?;
    let (endpoint, base_path) = endpoint_of(&target.base, target.token.as_deref(), &scenario).await?;

    let mut slots: Vec<String> = scenario.actions.iter().map(|a| a.name.clone()).collect();
    let mut slot_of = Vec::new();
    for (i, a) in scenario.actions.iter().enumerate() {
        let reply = match &a.plan {
            ActionPlan::Sse { requests, .. } if !requests.is_empty() => {
                slots.push(format!("{} reply", a.name));
                Some(slots.len() - 1)
            }
            _ => None,
        };
        slot_of.push((i, reply));
    }
    let mut cumulative = Vec::new();
    let mut sum = 0;
    for a in &scenario.actions {
        sum += u64::from(a.weight);
        cumulative.push(sum);
    }

    let (soft_tx, soft_rx) = watch::channel(false);
    let (hard_tx, hard_rx) = watch::channel(false);
    let load_duration = scenario.load.duration();
    let ctx = Arc::new(Ctx {
        base: target.base.clone(),
        rpc_path: format!("{base_path}/rpc"),
        base_path,
        endpoint,
        token: target.token.clone(),
        http,
        pools,
        recorder: Recorder::new(slots.len()),
        timeout: scenario.timeout,
        seed: fastrand::u64(..),
        load_duration,
        soft_stop: soft_rx,
        hard_stop: hard_rx,
        cumulative,
        slot_of,
        phase: AtomicU8::new(phase_code(scenario.load.stages[0].phase)),
        level_bits: AtomicU64::new(0f64.to_bits()),
        scenario: Arc::clone(&scenario),
    });

    let mut observers = Observers::start(observe_config(&scenario, target), ctx.http.clone());
    let cpu_before = crate::environment::process_cpu_seconds();
    let start = Instant::now();
    let driver = {
        let ctx = Arc::clone(&ctx);
        match scenario.load.model {
            Model::Closed => tokio::spawn(models::closed(ctx, start)),
            Model::Open => tokio::spawn(models::open(ctx, start)),
        }
    };

    let mut timeline = Timeline::new(slots.len());
    let post_load = scenario.post_load;
    let total = load_duration + post_load;
    let mut completion = Completion::Complete;
    let mut load_ended: Option<Instant> = None;
    let mut hard_at: Option<Instant> = None;
    let mut driver = Some(driver);
    let mut second = 1u64;
    let publish = |timeline: &Timeline, window: Option<Window>, phase: Phase, finished: bool, elapsed: Duration| {
        if let Some(cell) = &options.snapshots {
            let totals: Vec<_> = timeline
                .totals
                .iter()
                .map(|t| t.summary(elapsed.as_secs_f64()))
                .collect();
            let all = timeline.totals_all();
            let snapshot = Snapshot {
                scenario: scenario.name.clone(),
                target: target.base.clone(),
                phase,
                elapsed_s: elapsed.as_secs_f64(),
                remaining_s: total.saturating_sub(elapsed).as_secs_f64(),
                slots: slots.clone(),
                window,
                totals_all: all.summary(elapsed.as_secs_f64()),
                totals,
                sse: sse_figures(&ctx.recorder.gauges, timeline.peak_sse_open),
                statuses: all.statuses,
                failures: all.failures,
                thresholds: scenario.spec.thresholds.clone(),
                finished,
            };
            cell.send_replace(Some(Arc::new(snapshot)));
        }
    };
    publish(&timeline, None, ctx.phase().0, false, Duration::ZERO);

    loop {
        let tick_at = start + Duration::from_secs(second);
        tokio::select! {
            _ = tokio::time::sleep_until(tick_at) => {
                let in_post_load = load_ended.is_some();
                let (phase, level) = if in_post_load { (Phase::PostLoad, 0.0) } else { ctx.phase() };
                let observed = observers.window();
                let window = timeline.tick(&ctx.recorder, second, Duration::from_secs(1), phase, level, observed).clone();
                publish(&timeline, Some(window), phase, false, start.elapsed());
                second += 1;
            }
            _ = interrupt.wait_for(|i| *i), if completion == Completion::Complete => {
                // Stop the load now (a short graceful stop), or end the post-load window early.
                completion = Completion::Interrupted;
                if load_ended.is_none() {
                    load_ended = Some(Instant::now());
                    soft_tx.send_replace(true);
                    hard_at = Some(Instant::now() + scenario.load.graceful_stop.min(Duration::from_secs(2)));
                }
            }
        }
        let now = Instant::now();
        if load_ended.is_none() && now.duration_since(start) >= load_duration {
            load_ended = Some(now);
            soft_tx.send_replace(true);
            hard_at = Some(now + scenario.load.graceful_stop);
        }
        if let Some(at) = hard_at
            && now >= at
        {
            hard_tx.send_replace(true);
            hard_at = None;
        }
        if let Some(d) = driver.as_mut()
            && d.is_finished()
        {
            let _ = driver.take().expect("checked").await;
            hard_tx.send_replace(true);
            hard_at = None;
        }
        let post_load_over = load_ended.is_some_and(|e| now.duration_since(e) >= post_load);
        if driver.is_none() && (post_load_over || completion == Completion::Interrupted) {
            break;
        }
    }
    // The last partial window, so every sample recorded is in the series and the totals.
    let partial = start.elapsed().saturating_sub(Duration::from_secs(second - 1));
    if !partial.is_zero() {
        let observed = observers.window();
        timeline.tick(&ctx.recorder, second, partial, Phase::PostLoad, 0.0, observed);
    }
    observers.stop();
    let elapsed = start.elapsed();
    let cpu_after = crate::environment::process_cpu_seconds();
    // After everything was measured: the deletions are no part of the load or the post-load window.
    for problem in crate::setup::teardown(&ctx.http, &target.base, &ctx.pools).await {
        tracing::warn!("teardown: {problem}");
    }
    publish(
        &timeline,
        timeline.windows.last().cloned(),
        Phase::PostLoad,
        true,
        elapsed,
    );

    let load_seconds = load_ended.map_or(elapsed, |e| e.duration_since(start)).as_secs_f64();
    let g = &ctx.recorder.gauges;
    Ok(RunOutput {
        scenario: Arc::clone(&scenario),
        target_base: target.base.clone(),
        target_pid: target.pid(),
        spawned: target.spawned.is_some(),
        started_at,
        completion,
        slots,
        sse: sse_figures(g, timeline.peak_sse_open),
        timeline,
        pools: ctx.pools.counts(),
        observer_sources: observers.sources(),
        load_seconds,
        cut: g.cut.load(Ordering::Relaxed),
        dropped: g.dropped.load(Ordering::Relaxed),
        generator_cpu_s: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
        generator_peak_rss_bytes: crate::environment::peak_rss_bytes(),
    })
}

/// Where the observers look: the scenario's `[observe]`, filled in for a spawned gateway.
fn observe_config(scenario: &Scenario, target: &Target) -> ObserveConfig {
    let o = &scenario.spec.observe;
    let metrics_url = match o.metrics.as_deref() {
        Some("") => None,
        Some(m) if m.starts_with("http://") || m.starts_with("https://") => Some(m.to_owned()),
        Some(path) => Some(format!("{}{path}", target.base)),
        None => Some(format!("{}/metrics/prometheus", target.base)),
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
    ObserveConfig {
        metrics_url,
        postgres,
        pid: pid.or(target.pid()),
        children: o.children,
    }
}
