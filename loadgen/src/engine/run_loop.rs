//! The run's clock: one tick a second closes a window of the timeline and publishes a snapshot; the
//! deadlines move the run from load to graceful stop to post-load window to the end; an interrupt
//! cuts the load short (or the post-load window) and marks the run interrupted. State between
//! events lives in `RunLoop`, each event is one method, so the loop itself is a `select!` of two arms.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::timeline::Timeline;
use super::{Ctx, RunOptions, RunOutput, Stops, models, observe_config, series};
use crate::data::{Completion, Observed, Phase, RequestLoop, Snapshot, Window};
use crate::observe::Observers;
use crate::target::Target;

pub(super) struct RunLoop<'a> {
    ctx: Arc<Ctx>,
    stops: Stops,
    target: &'a Target,
    options: RunOptions,
    started_at: SystemTime,
    /// When the load started (after the setup, at `--start-at` when given).
    load_started_at: SystemTime,
    request_loop: RequestLoop,
    names: Vec<String>,
    observers: Observers,
    timeline: Timeline,
    /// The observers' counters before the load.
    before_load: Observed,
    generator_cpu_before: Option<f64>,
    start: Instant,
    /// The tick due next, in seconds from the start.
    second: u64,
    completion: Completion,
    load_ended: Option<Instant>,
    /// When actions still running are cut, once the load has ended.
    hard_at: Option<Instant>,
    /// The load model's task, until it has finished.
    driver: Option<JoinHandle<()>>,
    /// `<scenario>-<start>`, naming the run in live metrics.
    run_label: String,
}

impl<'a> RunLoop<'a> {
    /// Start the observers, take their readings before the load, start the load model; publish the
    /// first snapshot.
    pub async fn start(
        ctx: Arc<Ctx>,
        stops: Stops,
        target: &'a Target,
        options: RunOptions,
        started_at: SystemTime,
    ) -> RunLoop<'a> {
        let (names, _) = series(&ctx.scenario);
        let mut observers = Observers::start(observe_config(&ctx.scenario, target), ctx.env.scrape_http.clone());
        let before_load = observers.before(Duration::from_secs(2)).await;
        let generator_cpu_before = crate::host::process_cpu_seconds();
        let start = Instant::now();
        let load_started_at = SystemTime::now();
        let (driver, request_loop) = models::spawn(Arc::clone(&ctx), start);
        let ctx_name = ctx.scenario.name.clone();
        let run = RunLoop {
            timeline: Timeline::new(names.len(), !ctx.scenario.shard.is_whole()),
            ctx,
            stops,
            target,
            options,
            started_at,
            load_started_at,
            request_loop,
            names,
            observers,
            before_load,
            generator_cpu_before,
            start,
            second: 1,
            completion: Completion::Complete,
            load_ended: None,
            hard_at: None,
            driver: Some(driver),
            run_label: crate::data::run_label(&ctx_name, &humantime::format_rfc3339_seconds(started_at).to_string()),
        };
        run.publish(None, run.ctx.phase().0, false, Duration::ZERO);
        run
    }

    /// Tick until the post-load window is over (or an interrupt ends it), then finish.
    pub async fn drive(mut self, interrupt: &mut watch::Receiver<bool>) -> RunOutput {
        loop {
            let tick_at = self.start + Duration::from_secs(self.second);
            let running = self.completion == Completion::Complete;
            let has_driver = self.driver.is_some();
            let driver = &mut self.driver;
            tokio::select! {
                _ = tokio::time::sleep_until(tick_at) => self.on_tick(),
                _ = interrupt.wait_for(|i| *i), if running => self.on_interrupt(),
                // A model that ends by itself (its budget of actions spent) ends the load at once,
                // not at the next tick.
                _ = async { if let Some(d) = driver.as_mut() { let _ = d.await; } }, if has_driver => {
                    self.driver = None;
                    self.on_driver_done();
                }
            }
            if self.advance_deadlines().await {
                break;
            }
        }
        self.finish().await
    }

    /// Close the window that ends now and publish it.
    fn on_tick(&mut self) {
        let (phase, level) = if self.load_ended.is_some() {
            (Phase::PostLoad, 0.0)
        } else {
            self.ctx.phase()
        };
        let observed = self.observers.window();
        let window = self
            .timeline
            .tick(
                &self.ctx.env.recorder,
                self.second,
                Duration::from_secs(1),
                phase,
                level,
                observed,
            )
            .clone();
        self.publish(Some(window), phase, false, self.start.elapsed());
        self.second += 1;
    }

    /// Stop the load now (a short graceful stop), or end the post-load window early.
    fn on_interrupt(&mut self) {
        self.completion = Completion::Interrupted;
        if self.load_ended.is_none() {
            let graceful = self.ctx.scenario.load.graceful_stop.min(Duration::from_secs(2));
            self.end_load(Instant::now(), graceful);
        }
    }

    /// The load model has ended: every action has finished or been cut.
    fn on_driver_done(&mut self) {
        // It ended before its stages did: its budget of actions is spent and done.
        if self.load_ended.is_none() {
            self.end_load(Instant::now(), Duration::ZERO);
        }
        self.stops.hard.send_replace(true);
        self.hard_at = None;
    }

    fn end_load(&mut self, now: Instant, graceful: Duration) {
        self.load_ended = Some(now);
        self.ctx.env.load_ended.store(true, Ordering::Relaxed);
        self.stops.soft.send_replace(true);
        self.hard_at = Some(now + graceful);
    }

    /// Move to the next stage when its time has come; answers whether the run is over.
    async fn advance_deadlines(&mut self) -> bool {
        let now = Instant::now();
        if self.load_ended.is_none() && now.duration_since(self.start) >= self.ctx.load_duration {
            self.end_load(now, self.ctx.scenario.load.graceful_stop);
        }
        if self.hard_at.is_some_and(|at| now >= at) {
            self.stops.hard.send_replace(true);
            self.hard_at = None;
        }
        if let Some(driver) = self.driver.take_if(|d| d.is_finished()) {
            let _ = driver.await;
            self.on_driver_done();
        }
        let post_load_over = self
            .load_ended
            .is_some_and(|e| now.duration_since(e) >= self.ctx.scenario.post_load);
        self.driver.is_none() && (post_load_over || self.completion == Completion::Interrupted)
    }

    /// Close the last partial window, stop the observers, tear down, publish the end, hand back.
    async fn finish(mut self) -> RunOutput {
        // The last partial window, so every sample recorded is in the series and the totals.
        let partial = self
            .start
            .elapsed()
            .saturating_sub(Duration::from_secs(self.second - 1));
        if !partial.is_zero() {
            let observed = self.observers.window();
            self.timeline.tick(
                &self.ctx.env.recorder,
                self.second,
                partial,
                Phase::PostLoad,
                0.0,
                observed,
            );
        }
        let observer_sources = self.observers.stop();
        let elapsed = self.start.elapsed();
        let generator_cpu_after = crate::host::process_cpu_seconds();
        // After everything was measured: the deletions are no part of the load or the post-load window.
        let ctx = &self.ctx;
        for problem in crate::setup::teardown(&ctx.env.http, &self.target.base, &ctx.pools).await {
            tracing::warn!("teardown: {problem}");
        }
        self.publish(self.timeline.windows.last().cloned(), Phase::PostLoad, true, elapsed);

        let load_seconds = self
            .load_ended
            .map_or(elapsed, |e| e.duration_since(self.start))
            .as_secs_f64();
        let g = &ctx.env.recorder.gauges;
        RunOutput {
            scenario: Arc::clone(&ctx.scenario),
            target_base: self.target.base.clone(),
            target_pids: self.target.pids(),
            spawned: !self.target.spawned.is_empty(),
            proxy: self.target.proxy.as_ref().map(|_| "nginx".to_owned()),
            started_at: self.started_at,
            load_started_at: self.load_started_at,
            request_loop: self.request_loop,
            threads: ctx.load.threads(),
            completion: self.completion,
            sse: g.sse.figures(self.timeline.peak_sse_open),
            mcp: g.mcp.figures(self.timeline.peak_mcp_open),
            slots: self.names,
            timeline: self.timeline,
            pools: ctx.pools.counts(),
            observer_sources,
            before_load: self.before_load,
            load_seconds,
            dropped: g.dropped.load(Ordering::Relaxed),
            generator_cpu_s: self.generator_cpu_before.zip(generator_cpu_after).map(|(b, a)| a - b),
            generator_peak_rss_bytes: crate::host::peak_rss_bytes(),
            // Filled in by `engine::run`, which stops the upstream after the run.
            upstream: None,
        }
    }

    /// Send a snapshot to whoever watches (progress line, live feed, dashboard).
    fn publish(&self, window: Option<Window>, phase: Phase, finished: bool, elapsed: Duration) {
        let Some(cell) = &self.options.snapshots else { return };
        let scenario = &self.ctx.scenario;
        let secs = elapsed.as_secs_f64();
        let all = self.timeline.totals_all();
        let total = self.ctx.load_duration + scenario.post_load;
        let snapshot = Snapshot {
            scenario: scenario.name.clone(),
            target: self.target.base.clone(),
            phase,
            elapsed_s: secs,
            remaining_s: total.saturating_sub(elapsed).as_secs_f64(),
            slots: self.names.clone(),
            window,
            totals_all: all.summary(secs),
            totals: self.timeline.totals.iter().map(|t| t.summary(secs)).collect(),
            sse: self.ctx.env.recorder.gauges.sse.figures(self.timeline.peak_sse_open),
            mcp: self.ctx.env.recorder.gauges.mcp.figures(self.timeline.peak_mcp_open),
            statuses: all.statuses,
            failures: all.failures,
            thresholds: scenario.spec.thresholds.clone(),
            settle_s: scenario.settle.as_secs_f64(),
            post_load_s: scenario.post_load.as_secs_f64(),
            iterations: scenario.load.iterations,
            finished,
            run: self.run_label.clone(),
            latency: self.timeline.totals.iter().map(crate::record::Stats::buckets).collect(),
            taken_at_ms: SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        cell.send_replace(Some(Arc::new(snapshot)));
    }
}
