//! The results file: versioned JSON (its schema is `schemas/results.schema.json`, checked in tests),
//! written atomically. It says what ran (the scenario after overrides), where, on what machine, the
//! one-second series, per-action totals with their serialized histograms, and the SSE and generator
//! figures. An interrupted run writes what it measured, marked incomplete.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::data::{
    Completion, FailureKind, Judged, Metrics, Observed, ObservedSummary, Phase, StreamFigures, Summary, Window,
};
use crate::engine::RunOutput;
use crate::host::Environment;
use crate::observe::summarize;
use crate::scenario::{ActionKind, Model, ScenarioSpec, TargetPlan};

pub const SCHEMA_VERSION: u32 = 1;

/// Write a file so that a reader sees the old one or the whole new one, never a part: a temporary
/// file in the same directory, synced, then renamed over the path.
pub fn write_file_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    // Not a file (`-o /dev/null`, a pipe): written into, never renamed over.
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    // Readable like any file the user writes (a temporary file starts as 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub schema_version: u32,
    pub complete: bool,
    pub completion: Completion,
    pub scenario: ScenarioInfo,
    pub target: TargetInfo,
    /// The upstream MCP server the run's gateways federated, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<UpstreamInfo>,
    pub environment: Environment,
    pub started_at: String,
    pub setup: serde_json::Value,
    pub load: LoadInfo,
    /// Names of the recording slots: the actions, then sub-measurements such as SSE replies.
    pub slots: Vec<String>,
    pub series: Vec<Window>,
    /// The target's counters read just before the load, which the run's changes are counted from.
    /// Absent in files written before it was read (their changes count from the first window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_load: Option<Observed>,
    pub actions: Vec<ActionTotals>,
    pub totals: Summary,
    pub sse: StreamFigures,
    /// Streamable HTTP sessions (client side).
    #[serde(default)]
    pub mcp: StreamFigures,
    pub generator: GeneratorFigures,
    /// Target-side figures; each is null when its source was not configured or not reachable.
    pub observed: ObservedSummary,
    /// The scenario's thresholds judged against this run (no baseline). Absent in files written
    /// before thresholds were judged.
    #[serde(default)]
    pub thresholds: Vec<Judged>,
    /// A run merged from shards (`stampede merge`): which, and which were missing or interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<crate::data::MergeInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioInfo {
    pub name: String,
    pub file: Option<String>,
    /// The scenario as run, after command-line overrides.
    pub spec: ScenarioSpec,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetInfo {
    pub url: String,
    pub spawned: bool,
    /// The spawned gateway's profile.
    pub profile: Option<String>,
    pub pid: Option<u32>,
    /// The spawned gateway's store, `sqlite` or `postgres` (speed on one says nothing of the other);
    /// null for a gateway at a URL. Absent in files written before it was recorded.
    #[serde(default)]
    pub store: Option<String>,
    /// Spawned gateways on the one database (their CPU is summed); 1 in files written before replicas.
    #[serde(default = "one_replica")]
    pub replicas: u32,
    /// The proxy the run started in front of them, if any (`nginx`).
    #[serde(default)]
    pub proxy: Option<String>,
}

fn one_replica() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamInfo {
    pub url: String,
    pub spawned: bool,
    /// A spawned upstream's CPU seconds over its life (setup, load and post-load window), measured
    /// apart from the generator's and the target's; null when not measured.
    pub cpu_seconds: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseSpan {
    pub phase: Phase,
    pub start_s: u64,
    pub end_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadInfo {
    pub model: Model,
    /// How long the load ran (the post-load window not included).
    pub seconds: f64,
    pub peak_target: f64,
    pub phases: Vec<PhaseSpan>,
    /// Open model: arrivals dropped because every slot was busy.
    pub dropped: u64,
    /// The slice of the load this run was (`I/N`, `--shard`); absent for the whole load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// When the load started (RFC 3339, milliseconds): after the setup, at the common start when given.
    /// Merged shards' windows are lined up by it. Absent in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// The common start asked for (`--start-at`, `--start-in`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// How late the load started after the common start (a shard whose setup outlasted the wait).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_lag_ms: Option<f64>,
    /// What ran the users (absent in files written before it was recorded, and in a merge of parts
    /// that differ).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_loop: Option<crate::data::RequestLoop>,
    /// The load threads the users ran on (absent as `request_loop` is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionTotals {
    pub name: String,
    pub kind: Option<ActionKind>,
    pub summary: Summary,
    pub statuses: BTreeMap<u16, u64>,
    pub failures: BTreeMap<FailureKind, u64>,
    pub rpc_errors: BTreeMap<i64, u64>,
    /// Distinct error messages (the first 20) and their counts.
    pub errors: BTreeMap<String, u64>,
    /// Answers per replica, by the header `[target] served_by_header` names (the first 32 names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub served_by: BTreeMap<String, u64>,
    /// Latencies in µs: an HdrHistogram V2 (deflate) serialization, base64.
    pub histogram: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GeneratorFigures {
    /// CPU seconds this process spent over the run; null when /proc could not be read.
    pub cpu_seconds: Option<f64>,
    pub requests_per_cpu_second: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
}

pub use crate::record::{decode_histogram, encode_histogram};

impl Results {
    pub fn from_run(run: &RunOutput, file: Option<&Path>) -> Results {
        let scenario = &run.scenario;
        let seconds = run.load_seconds;
        let mut actions = Vec::new();
        for (i, (name, stats)) in run.slots.iter().zip(&run.timeline.totals).enumerate() {
            actions.push(ActionTotals {
                name: name.clone(),
                kind: scenario.actions.get(i).map(|a| a.kind()),
                summary: stats.summary(seconds),
                statuses: stats.statuses.clone(),
                failures: stats.failures.clone(),
                rpc_errors: stats.rpc_errors.clone(),
                errors: stats.errors.clone(),
                served_by: stats.served_by.clone(),
                histogram: encode_histogram(stats),
            });
        }
        let totals = run.timeline.totals_all().summary(seconds);
        let requests = totals.count;
        let started = humantime::format_rfc3339_seconds(run.started_at).to_string();
        let windows: Vec<_> = run
            .timeline
            .windows
            .iter()
            .map(|w| (w.t, w.phase == Phase::PostLoad, &w.observed))
            .collect();
        let observed = summarize(
            Some(&run.before_load),
            &windows,
            seconds,
            scenario.settle,
            run.observer_sources.clone(),
        );
        let mut results = Results {
            schema_version: SCHEMA_VERSION,
            complete: run.completion == Completion::Complete,
            completion: run.completion,
            scenario: ScenarioInfo {
                name: scenario.name.clone(),
                file: file.map(|f| f.display().to_string()),
                spec: scenario.spec.redacted(),
            },
            target: TargetInfo {
                url: crate::observe::postgres::redact(&run.target_base),
                spawned: run.spawned,
                profile: match &scenario.target {
                    TargetPlan::Spawn { profile, .. } => Some(format!("{profile:?}").to_lowercase()),
                    TargetPlan::Url(_) => None,
                },
                pid: run.target_pids.first().copied(),
                replicas: run.target_pids.len().max(1) as u32,
                proxy: run.proxy.clone(),
                store: match &scenario.target {
                    TargetPlan::Spawn { database_url, .. } => Some(
                        match database_url.as_deref() {
                            Some(u) if u.starts_with("postgres") => "postgres",
                            _ => "sqlite",
                        }
                        .to_owned(),
                    ),
                    TargetPlan::Url(_) => None,
                },
            },
            upstream: run.upstream.as_ref().map(|u| UpstreamInfo {
                url: crate::observe::postgres::redact(&u.url),
                spawned: u.spawned,
                cpu_seconds: u.cpu_seconds,
            }),
            environment: Environment::here(),
            started_at: started,
            setup: run.pools.clone(),
            load: LoadInfo {
                model: scenario.load.model,
                seconds,
                peak_target: match scenario.load.model {
                    crate::scenario::Model::Closed => scenario.shard.part(scenario.load.peak().round() as usize) as f64,
                    crate::scenario::Model::Open => scenario.shard.share(scenario.load.peak()),
                },
                shard: (!scenario.shard.is_whole()).then(|| scenario.shard.to_string()),
                started_at: Some(humantime::format_rfc3339_millis(run.load_started_at).to_string()),
                start_at: scenario
                    .start_at
                    .map(|t| humantime::format_rfc3339_millis(t).to_string()),
                start_lag_ms: scenario.start_at.map(|at| {
                    run.load_started_at
                        .duration_since(at)
                        .map_or(0.0, |late| late.as_secs_f64() * 1000.0)
                }),
                request_loop: Some(run.request_loop),
                threads: u32::try_from(run.threads).ok(),
                phases: phase_spans(&run.timeline.windows),
                dropped: run.dropped,
            },
            slots: run.slots.clone(),
            series: run.timeline.windows.clone(),
            before_load: Some(run.before_load.clone()).filter(|o| *o != Observed::default()),
            actions,
            totals,
            sse: run.sse.clone(),
            mcp: run.mcp.clone(),
            generator: GeneratorFigures {
                cpu_seconds: run.generator_cpu_s,
                requests_per_cpu_second: run.generator_cpu_s.filter(|c| *c > 0.0).map(|c| requests as f64 / c),
                peak_rss_bytes: run.generator_peak_rss_bytes,
            },
            observed,
            thresholds: Vec::new(),
            merged: None,
        };
        results.thresholds = crate::data::threshold::judge(&scenario.thresholds, &results.metrics(), None);
        results
    }

    /// `results/runs/<scenario>-<timestamp>.json`.
    pub fn default_path(&self) -> PathBuf {
        // The name the run had in its live metrics.
        PathBuf::from("results/runs").join(format!(
            "{}.json",
            crate::data::run_label(&self.scenario.name, &self.started_at)
        ))
    }

    /// Write to a temporary file beside `path`, sync, rename: a reader never sees half a file.
    pub fn write_atomically(&self, path: &Path) -> anyhow::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        write_file_atomically(path, &bytes)
    }

    /// The named metrics of this run by scope: `all`, then each action by name.
    pub fn metrics(&self) -> BTreeMap<String, Metrics> {
        use crate::data::metrics::{Figures, unexpected};
        let mut failures = BTreeMap::new();
        for a in &self.actions {
            for (k, n) in &a.failures {
                *failures.entry(*k).or_default() += n;
            }
        }
        Figures {
            actions: self
                .actions
                .iter()
                .map(|a| (a.name.as_str(), &a.summary, Some(unexpected(&a.failures))))
                .collect(),
            totals: &self.totals,
            failures: &failures,
            observed: &self.observed,
            generator_cpu_s: self.generator.cpu_seconds,
            mcp_sessions: (self.mcp.opened > 0).then_some((self.mcp.opened, self.mcp.peak_open)),
            load_seconds: self.load.seconds,
        }
        .by_scope()
    }

    /// How a run read from `path` is named in tables: the file name, and the spawned gateway's profile
    /// when the name does not already say it.
    pub fn label(&self, path: &Path) -> String {
        let stem = path
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned());
        let label = match &self.target.profile {
            Some(p) if !stem.contains(p.as_str()) => format!("{stem} ({p})"),
            _ => stem,
        };
        match self.completion {
            Completion::Complete => label,
            Completion::Interrupted => format!("{label} (interrupted)"),
            Completion::Partial => format!("{label} (partial)"),
        }
    }

    pub fn read(path: &Path) -> anyhow::Result<Results> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        if value["kind"] == "stampede-baseline" {
            anyhow::bail!(
                "{} is a baseline, not the results file of a run (give it with --baseline)",
                path.display()
            );
        }
        let version = value["schema_version"].as_u64();
        if version != Some(u64::from(SCHEMA_VERSION)) {
            anyhow::bail!(
                "{}: schema_version {:?}, this stampede reads {SCHEMA_VERSION}",
                path.display(),
                version
            );
        }
        serde_json::from_value(value).with_context(|| format!("{}: not a stampede results file", path.display()))
    }
}

pub(crate) fn phase_spans(windows: &[Window]) -> Vec<PhaseSpan> {
    let mut spans: Vec<PhaseSpan> = Vec::new();
    for w in windows {
        match spans.last_mut() {
            Some(last) if last.phase == w.phase => last.end_s = w.t,
            _ => spans.push(PhaseSpan {
                phase: w.phase,
                start_s: w.t.saturating_sub(1),
                end_s: w.t,
            }),
        }
    }
    spans
}
