//! The engine: start the target, set up, drive the load model, keep the timeline, stop on time (or on
//! interrupt), hold the post-load window, and hand back everything the results file needs. What each
//! action does is its kind's (`actions`); the engine picks actions, paces users or arrivals
//! (`models`), and runs the clock (`run_loop`). `prepare` readies a run (clients, setup, series);
//! `ctx` is what users run with once it is ready.

mod ctx;
mod models;
mod prepare;
mod run_loop;
mod threads;
pub mod timeline;

pub use ctx::Ctx;
pub(crate) use prepare::endpoint_of;
use prepare::{RunUpstream, Stops, observe_config, prepare, series};
pub use prepare::{UpstreamOutput, tls_config};

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::data::{Completion, Sources, StreamFigures};
pub use crate::error::RunError;
use crate::scenario::Scenario;
use crate::target::Target;
use timeline::{SnapshotCell, Timeline};

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
    pub request_loop: crate::data::RequestLoop,
    /// The load threads the users ran on.
    pub threads: usize,
    pub completion: Completion,
    pub slots: Vec<String>,
    pub timeline: Timeline,
    pub sse: StreamFigures,
    pub mcp: StreamFigures,
    pub pools: serde_json::Value,
    pub load_seconds: f64,
    pub dropped: u64,
    pub observer_sources: Sources,
    /// The observers' counters read before the load.
    pub before_load: crate::data::Observed,
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
) -> Result<RunOutput, RunError> {
    let scenario = Arc::new(scenario);
    // Every connection is a file: whoever runs a scenario (run, gate --run, baseline, the dashboard,
    // the bench) gets the hard limit, not a soft 1024.
    let _ = crate::host::raise_open_files_limit();
    let started_at = SystemTime::now();
    let mut target = Target::prepare(&scenario).await?;
    let result = async {
        let upstream = RunUpstream::start(&scenario.upstream).await?;
        let output = async {
            let threads = threads::LoadThreads::start(scenario.load.threads).context("starting the load threads")?;
            let (ctx, stops) = prepare(Arc::clone(&scenario), &target, upstream.url(), threads.spawner()).await?;
            wait_for_start(&scenario, &mut interrupt).await;
            let output = run_loop::RunLoop::start(ctx, stops, &target, options, started_at)
                .await
                .drive(&mut interrupt)
                .await;
            // After the teardown (whose client may have connections the users' threads drive).
            let _ = tokio::task::spawn_blocking(move || drop(threads)).await;
            Ok::<_, RunError>(output)
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
