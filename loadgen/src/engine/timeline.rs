//! The one-second timeline: every second the recorder's windows are swapped out, summarized into a
//! [`Window`] and merged into the run totals; a [`Snapshot`] of the run goes to whoever watches
//! (progress line, live feed, dashboard).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::data::{Observed, Phase, Snapshot, Window};
use crate::record::{Gauges, Recorder, Stats};

/// Owns the series and the totals while the run goes on.
pub struct Timeline {
    pub windows: Vec<Window>,
    pub totals: Vec<Stats>,
    spare: Vec<Stats>,
    last_dropped: u64,
    pub peak_sse_open: i64,
    pub peak_mcp_open: i64,
    /// Keep each window's histograms in it (a shard's run: `stampede merge` adds them up exactly).
    keep_histograms: bool,
}

impl Timeline {
    pub fn new(slots: usize, keep_histograms: bool) -> Timeline {
        Timeline {
            windows: Vec::new(),
            totals: (0..slots).map(|_| Stats::default()).collect(),
            spare: (0..slots).map(|_| Stats::default()).collect(),
            last_dropped: 0,
            peak_sse_open: 0,
            peak_mcp_open: 0,
            keep_histograms,
        }
    }

    /// Close the window that ends `t` seconds into the run, lasting `len`.
    pub fn tick(
        &mut self,
        recorder: &Recorder,
        t: u64,
        len: Duration,
        phase: Phase,
        target: f64,
        observed: Observed,
    ) -> &Window {
        recorder.swap_windows(&mut self.spare);
        let secs = len.as_secs_f64();
        let mut all = Stats::default();
        let mut actions = Vec::with_capacity(self.spare.len());
        for (window, total) in self.spare.iter().zip(self.totals.iter_mut()) {
            actions.push(window.summary(secs));
            total.merge(window);
            all.merge(window);
        }
        let histograms = if self.keep_histograms {
            self.spare.iter().map(crate::record::encode_histogram).collect()
        } else {
            Vec::new()
        };
        let g = &recorder.gauges;
        let dropped = Gauges::get(&g.dropped);
        let sse_open = g.sse.open.load(Ordering::Relaxed);
        self.peak_sse_open = self.peak_sse_open.max(sse_open);
        let mcp_open = g.mcp.open.load(Ordering::Relaxed);
        self.peak_mcp_open = self.peak_mcp_open.max(mcp_open);
        self.windows.push(Window {
            t,
            phase,
            target,
            users: Gauges::get(&g.users),
            in_flight: g.in_flight.load(),
            sse_open,
            mcp_open,
            dropped: dropped - self.last_dropped,
            actions,
            all: all.summary(secs),
            observed,
            histograms,
        });
        self.last_dropped = dropped;
        self.windows.last().expect("just pushed")
    }

    pub fn totals_all(&self) -> Stats {
        let mut all = Stats::default();
        for t in &self.totals {
            all.merge(t);
        }
        all
    }
}

/// Shared handle to the newest snapshot.
pub type SnapshotCell = Arc<tokio::sync::watch::Sender<Option<Arc<Snapshot>>>>;
