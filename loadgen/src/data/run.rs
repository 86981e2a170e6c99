//! A run as the one-second timeline saves it: its phases, each second (`Window`), what a live view is
//! shown (`Snapshot`), the client-side SSE figures, and how the run ended.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::observed::Observed;
use super::summary::{FailureKind, Summary};

/// The phase of the load a moment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    RampUp,
    Steady,
    RampDown,
    PostLoad,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::RampUp => "ramp-up",
            Phase::Steady => "steady",
            Phase::RampDown => "ramp-down",
            Phase::PostLoad => "post-load",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Completion {
    Complete,
    /// Interrupted (Ctrl-C, or the dashboard's quit): the results hold what was measured.
    Interrupted,
    /// A merge of shards that lacks one, or has an interrupted one (`merged` names which).
    Partial,
}

/// What ran the users: one epoll loop per load thread over their connections (`direct`: every action
/// a fixed plain-HTTP request, no think time) or a task per user (`tasks`: everything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestLoop {
    Direct,
    Tasks,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    /// Seconds since the load started, at the end of the window.
    pub t: u64,
    pub phase: Phase,
    /// Users (closed) or arrivals per second (open) the load aimed at.
    pub target: f64,
    /// Closed model: users running.
    pub users: u64,
    pub in_flight: i64,
    pub sse_open: i64,
    /// Streamable HTTP sessions open (client side).
    #[serde(default)]
    pub mcp_open: i64,
    /// Open model: arrivals dropped in this window.
    pub dropped: u64,
    /// Per recording slot, in the order of `Results::slots`.
    pub actions: Vec<Summary>,
    /// All slots together.
    pub all: Summary,
    /// What the target-side observers saw in this window.
    pub observed: Observed,
    /// A shard's run only: each slot's latency histogram of this window (HdrHistogram V2 deflate,
    /// base64), so `stampede merge` computes the merged window's percentiles exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub histograms: Vec<String>,
}

/// What a live view shows: where the run is, the latest window and the totals so far.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub scenario: String,
    pub target: String,
    pub phase: Phase,
    pub elapsed_s: f64,
    /// Of the load and the post-load window together.
    pub remaining_s: f64,
    pub slots: Vec<String>,
    pub window: Option<Window>,
    pub totals: Vec<Summary>,
    pub totals_all: Summary,
    pub sse: StreamFigures,
    #[serde(default)]
    pub mcp: StreamFigures,
    /// Statuses and failure kinds over all actions so far.
    pub statuses: BTreeMap<u16, u64>,
    pub failures: BTreeMap<FailureKind, u64>,
    /// The scenario's threshold expressions, by scope.
    pub thresholds: BTreeMap<String, Vec<String>>,
    /// The scenario's settle time: the start of the post-load window left out of the settled CPU.
    #[serde(default = "default_settle_s")]
    pub settle_s: f64,
    /// The post-load window's length (0: the run ends with its load, as the ad-hoc form's do).
    #[serde(default)]
    pub post_load_s: f64,
    /// A run of a count of actions (`load.iterations`, the ad-hoc `-n`): how many.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations: Option<u64>,
    pub finished: bool,
    /// Names the run in live metrics (`<scenario>-<start>`, the default results file's stem).
    #[serde(default)]
    pub run: String,
    /// Each slot's latency so far as cumulative buckets, for `/metrics` in this process (not sent on
    /// the JSON feed, whose readers compute nothing from it).
    #[serde(skip)]
    pub latency: Vec<LatencyBuckets>,
    /// When the snapshot was taken (Unix milliseconds): its counters are as of this instant, and
    /// `/metrics` says so, or a scrape that falls between two ticks would see a second's step late.
    #[serde(skip)]
    pub taken_at_ms: u64,
}

/// The name of a run: its scenario and the second it started (`smoke-20261201T054444Z`), from the
/// start as the results file writes it (RFC 3339); the stem of its default results file too.
pub fn run_label(scenario: &str, started_at: &str) -> String {
    let stamp: String = started_at.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{scenario}-{stamp}")
}

/// A latency histogram as Prometheus exposes one: counts at or below each of `BOUNDS_S`, the count and
/// the sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyBuckets {
    /// Cumulative, one per bound of `LatencyBuckets::BOUNDS_S`.
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum_s: f64,
}

impl LatencyBuckets {
    /// Upper bounds in seconds: 1 ms to 30 s, the span of a gateway's answers from a cache hit to a
    /// timeout.
    pub const BOUNDS_S: [f64; 14] = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ];
}

fn default_settle_s() -> f64 {
    5.0
}

/// One transport's sessions, client side: open now and at most, opened, and how they ended.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamFigures {
    pub open: i64,
    pub opened: u64,
    pub closed_abrupt: u64,
    pub closed_rst: u64,
    pub closed_graceful: u64,
    #[serde(default)]
    pub closed_delete: u64,
    pub server_closed: u64,
    #[serde(default)]
    pub errored: u64,
    /// Streamable HTTP: sessions told "session not found" (404, or a −32001 refusal) that started
    /// a new session, as the specification says a client must; those whose new session answered;
    /// and the time from the 404 to that answer, summed over those (ms).
    #[serde(default)]
    pub reinitialized: u64,
    #[serde(default)]
    pub recovered: u64,
    #[serde(default)]
    pub recovery_ms: u64,
    /// Streamable HTTP: sessions the client left without a delete because the server offers none
    /// (`DELETE` answered 405, as the specification lets it).
    #[serde(default)]
    pub closed_undeletable: u64,
    /// Streamable HTTP: `GET` streams the server offers none of (405, as the specification lets it).
    #[serde(default)]
    pub listen_not_offered: u64,
    /// Streamable HTTP: sessions that spoke the stateless era (2026-07-28); the rest spoke the
    /// session era.
    #[serde(default)]
    pub stateless: u64,
    /// Streamable HTTP, `protocol = "auto"`: sessions whose server answered `server/discover` with no
    /// stateless version, or refused it, and were started with `initialize` instead.
    #[serde(default)]
    pub fell_back: u64,
    /// Stateless era: retries of requests answered `input_required` (multi round-trip requests),
    /// each carrying the client's `inputResponses`.
    #[serde(default)]
    pub mrtr_rounds: u64,
    /// Stateless era: results that carried caching hints (`ttlMs`), and of those the ones scoped
    /// `private` (the rest `public`).
    #[serde(default)]
    pub cache_hinted: u64,
    #[serde(default)]
    pub cache_private: u64,
    /// The smallest `ttlMs` a result carried (none: no result carried one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms_min: Option<u64>,
    /// `cache = true`: requests the client answered from its cache, honouring `ttlMs`, not sent.
    #[serde(default)]
    pub cache_hits: u64,
    /// Streamable HTTP: messages the server sent on held streams (the GET stream, or a stateless
    /// listen's: its acknowledgement and change notifications).
    #[serde(default)]
    pub stream_messages: u64,
    pub peak_open: i64,
}

impl StreamFigures {
    /// Sessions the client ended, whichever way.
    pub fn closed_by_client(&self) -> u64 {
        self.closed_abrupt + self.closed_rst + self.closed_graceful + self.closed_delete + self.closed_undeletable
    }
}
