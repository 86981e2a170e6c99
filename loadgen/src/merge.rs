//! `stampede merge`: the results of N shards (`--shard I/N`) as the results of one run, exactly — the
//! latency histograms added (never percentiles averaged), counters summed, the one-second windows lined
//! up by wall clock, the sessions summed, the target-side figures taken from the one shard that observed
//! the target — and the scenario's thresholds judged on the whole. A shard missing or interrupted leaves
//! the merged run partial, naming it; shards of different scenarios or builds are refused.
//!
//! The merged file is an ordinary results file (plus `merged`), so `gate`, `compare`, `report` and the
//! dashboard's replay read it as they read any run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::data::{Completion, MergeInfo, MergedPart, Observed, Snapshot, StreamFigures, Summary, Window};
use crate::record::{Stats, decode_histogram};
use crate::results::{ActionTotals, GeneratorFigures, LoadInfo, Results, phase_spans};
use crate::shard::Shard;

/// Why shards cannot be merged: a mistake in what `merge` was given (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(String);

fn refuse(message: String) -> Refused {
    Refused(message)
}

/// Merge the shards read from `files`.
pub fn merge_files(files: &[PathBuf]) -> Result<Results, Refused> {
    let runs = files
        .iter()
        .map(|f| Results::read(f).map_err(|e| refuse(format!("{e:#}"))))
        .collect::<Result<Vec<_>, _>>()?;
    merge(files, runs)
}

/// Merge shards' results (`files` name them in messages and in `merged.parts`).
pub fn merge(files: &[PathBuf], runs: Vec<Results>) -> Result<Results, Refused> {
    let mut parts: Vec<(Shard, &Path, Results)> = Vec::new();
    for (file, r) in files.iter().zip(runs) {
        let shard: Shard = r
            .load
            .shard
            .as_deref()
            .ok_or_else(|| {
                refuse(format!(
                    "{} is the results of a whole run, not of a shard (stampede run … --shard I/N)",
                    file.display()
                ))
            })?
            .parse()
            .map_err(|e| refuse(format!("{}: load.shard: {e}", file.display())))?;
        parts.push((shard, file.as_path(), r));
    }
    let Some((first_shard, first_file, first)) = parts.first() else {
        return Err(refuse("give the results files of the shards to merge".to_owned()));
    };
    let count = first_shard.count;
    let spec = serde_json::to_value(&first.scenario.spec).expect("a spec serializes");
    let build = |r: &Results| {
        (
            r.environment.stampede_version.clone(),
            r.environment.git_revision.clone(),
            r.environment.build.clone(),
        )
    };
    for (shard, file, r) in &parts[1..] {
        let same = |what: &str| {
            refuse(format!(
                "{} and {} are not shards of one run: {what}",
                first_file.display(),
                file.display()
            ))
        };
        if shard.count != count {
            return Err(same(&format!("shard {first_shard} against {shard}")));
        }
        if r.scenario.name != first.scenario.name
            || serde_json::to_value(&r.scenario.spec).expect("a spec serializes") != spec
        {
            return Err(same(&format!(
                "different scenarios ({:?} and {:?}, or the same one with other settings)",
                first.scenario.name, r.scenario.name
            )));
        }
        if build(r) != build(first) {
            return Err(same(&format!(
                "different builds of stampede ({:?} and {:?})",
                build(first),
                build(r)
            )));
        }
    }
    parts.sort_by_key(|(s, _, _)| s.index);
    if let Some(w) = parts.windows(2).find(|w| w[0].0.index == w[1].0.index) {
        return Err(refuse(format!(
            "{} and {} are both shard {}",
            w[0].1.display(),
            w[1].1.display(),
            w[0].0
        )));
    }
    Ok(combine(count, &parts))
}

/// When a shard's load started, from its results (None in files written before it was recorded).
fn load_start(r: &Results) -> Option<SystemTime> {
    r.load
        .started_at
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
}

fn combine(count: u32, parts: &[(Shard, &Path, Results)]) -> Results {
    let first = &parts[0].2;
    let earliest = parts.iter().filter_map(|(_, _, r)| load_start(r)).min();
    let offsets: Vec<u64> = parts
        .iter()
        .map(|(_, _, r)| match (load_start(r), earliest) {
            (Some(s), Some(e)) => s.duration_since(e).unwrap_or(Duration::ZERO).as_secs_f64().round() as u64,
            _ => 0,
        })
        .collect();
    // The shard that observed the target: the one whose observers had a source.
    let observer = parts.iter().position(|(_, _, r)| {
        let s = &r.observed.sources;
        s.cpu.is_some() || s.metrics.is_some() || s.postgres.is_some() || s.pgbouncer.is_some() || s.resources.is_some()
    });

    let seconds = parts
        .iter()
        .zip(&offsets)
        .map(|((_, _, r), o)| r.load.seconds + *o as f64)
        .fold(0.0, f64::max);
    let actions = merge_actions(parts, seconds);
    let mut all = Stats::default();
    for a in &actions {
        all.merge(&a.1);
    }
    let series = merge_windows(parts, &offsets, observer);
    let peak = |open: fn(&Window) -> i64| series.iter().map(open).max().unwrap_or(0);
    let sse = sum_figures(parts.iter().map(|p| &p.2.sse), peak(|w| w.sse_open));
    let mcp = sum_figures(parts.iter().map(|p| &p.2.mcp), peak(|w| w.mcp_open));
    let cpu: Option<f64> = parts.iter().map(|p| p.2.generator.cpu_seconds).sum();
    let missing: Vec<String> = (1..=count)
        .filter(|i| !parts.iter().any(|p| p.0.index == *i))
        .map(|index| Shard { index, count }.to_string())
        .collect();
    let interrupted: Vec<String> = parts
        .iter()
        .filter(|p| !p.2.complete)
        .map(|p| p.0.to_string())
        .collect();
    let complete = missing.is_empty() && interrupted.is_empty();
    let observed_run = observer.map(|i| &parts[i].2);

    let mut merged = Results {
        complete,
        completion: if complete {
            Completion::Complete
        } else {
            Completion::Partial
        },
        upstream: first.upstream.clone(),
        started_at: parts.iter().map(|p| p.2.started_at.clone()).min().unwrap_or_default(),
        load: LoadInfo {
            model: first.load.model,
            seconds,
            peak_target: parts.iter().map(|p| p.2.load.peak_target).sum(),
            phases: phase_spans(&series),
            dropped: parts.iter().map(|p| p.2.load.dropped).sum(),
            shard: None,
            started_at: earliest.map(|e| humantime::format_rfc3339_millis(e).to_string()),
            start_at: first.load.start_at.clone(),
            start_lag_ms: None,
            // The same in every shard of one scenario, but the parts may come from different versions.
            request_loop: parts
                .iter()
                .all(|p| p.2.load.request_loop == first.load.request_loop)
                .then_some(first.load.request_loop)
                .flatten(),
            threads: parts
                .iter()
                .all(|p| p.2.load.threads == first.load.threads)
                .then_some(first.load.threads)
                .flatten(),
        },
        slots: first.slots.clone(),
        series,
        before_load: observed_run.and_then(|r| r.before_load.clone()),
        totals: all.summary(seconds),
        actions: actions.into_iter().map(|(a, _)| a).collect(),
        sse,
        mcp,
        generator: GeneratorFigures {
            cpu_seconds: cpu,
            requests_per_cpu_second: cpu.filter(|c| *c > 0.0).map(|c| all.count as f64 / c),
            // The largest shard's: each ran in its own process (and, on Kubernetes, its own pod).
            peak_rss_bytes: parts.iter().filter_map(|p| p.2.generator.peak_rss_bytes).max(),
        },
        observed: observed_run.map(|r| r.observed.clone()).unwrap_or_default(),
        thresholds: Vec::new(),
        merged: Some(MergeInfo {
            shards: count,
            parts: parts
                .iter()
                .zip(&offsets)
                .map(|((shard, file, r), offset)| MergedPart {
                    shard: shard.to_string(),
                    file: file.display().to_string(),
                    complete: r.complete,
                    offset_s: *offset,
                    start_lag_ms: r.load.start_lag_ms,
                })
                .collect(),
            missing,
            interrupted,
            observed_by: observer.map(|i| parts[i].0.to_string()),
        }),
        ..first.clone()
    };
    let thresholds = crate::data::threshold::parse_all(&first.scenario.spec.thresholds).unwrap_or_default();
    merged.thresholds = crate::data::threshold::judge(&thresholds, &merged.metrics(), None);
    merged
}

/// A slot's figures rebuilt from a summary and its histogram (counters from the summary).
fn stats_of(summary: &Summary, histogram: Option<&str>) -> Option<Stats> {
    let mut stats = Stats {
        count: summary.count,
        ok: summary.ok,
        expected: summary.expected,
        failed: summary.failed,
        aborted: summary.aborted,
        connect_errors: summary.connect_errors,
        bytes_read: summary.bytes_read.unwrap_or(0),
        bytes_counted: if summary.bytes_read.is_some() { summary.count } else { 0 },
        ..Stats::default()
    };
    stats.latency.add(decode_histogram(histogram?).ok()?).ok()?;
    Some(stats)
}

/// Each slot's totals over the shards, with the histograms added.
fn merge_actions(parts: &[(Shard, &Path, Results)], seconds: f64) -> Vec<(ActionTotals, Stats)> {
    let first = &parts[0].2;
    (0..first.actions.len())
        .map(|i| {
            let mut stats = Stats::default();
            for (_, _, r) in parts {
                let a = &r.actions[i];
                let mut part = stats_of(&a.summary, Some(&a.histogram)).unwrap_or_else(|| Stats {
                    count: a.summary.count,
                    ok: a.summary.ok,
                    expected: a.summary.expected,
                    failed: a.summary.failed,
                    aborted: a.summary.aborted,
                    connect_errors: a.summary.connect_errors,
                    bytes_read: a.summary.bytes_read.unwrap_or(0),
                    bytes_counted: if a.summary.bytes_read.is_some() {
                        a.summary.count
                    } else {
                        0
                    },
                    ..Stats::default()
                });
                part.failures = a.failures.clone();
                part.statuses = a.statuses.clone();
                part.rpc_errors = a.rpc_errors.clone();
                part.errors = a.errors.clone();
                part.served_by = a.served_by.clone();
                stats.merge(&part);
            }
            let totals = ActionTotals {
                name: first.actions[i].name.clone(),
                kind: first.actions[i].kind,
                summary: stats.summary(seconds),
                statuses: stats.statuses.clone(),
                failures: stats.failures.clone(),
                rpc_errors: stats.rpc_errors.clone(),
                errors: stats.errors.clone(),
                served_by: stats.served_by.clone(),
                histogram: crate::record::encode_histogram(&stats),
            };
            (totals, stats)
        })
        .collect()
}

/// The windows on one wall-clock timeline: each shard's window `t` lands at `t + offset`.
fn merge_windows(parts: &[(Shard, &Path, Results)], offsets: &[u64], observer: Option<usize>) -> Vec<Window> {
    let mut at: BTreeMap<u64, Vec<(usize, &Window)>> = BTreeMap::new();
    for (k, ((_, _, r), offset)) in parts.iter().zip(offsets).enumerate() {
        for w in &r.series {
            at.entry(w.t + offset).or_default().push((k, w));
        }
    }
    let slots = parts[0].2.slots.len();
    at.into_iter()
        .map(|(t, windows)| merge_window(t, &windows, slots, observer))
        .collect()
}

/// One second of several shards (`(shard, window)`) as one window at `t`. Counts and rates add up; the
/// percentiles come from the added histograms, and are not measured where a shard's window has none
/// (a whole run's, or a file written before shards kept them); the target-side figures are the
/// observing shard's.
fn merge_window(t: u64, windows: &[(usize, &Window)], slots: usize, observer: Option<usize>) -> Window {
    let (_, lead) = windows[0];
    let mut actions = Vec::with_capacity(slots);
    let mut all = Stats::default();
    let mut all_exact = true;
    let mut all_rps = 0.0;
    for slot in 0..slots {
        let shards: Vec<&Summary> = windows.iter().filter_map(|(_, w)| w.actions.get(slot)).collect();
        let rps: f64 = shards.iter().map(|s| s.rps).sum();
        all_rps += rps;
        let exact: Option<Vec<Stats>> = windows
            .iter()
            .filter(|(_, w)| w.actions.get(slot).is_some())
            .map(|(_, w)| stats_of(&w.actions[slot], w.histograms.get(slot).map(String::as_str)))
            .collect();
        let summary = match exact {
            Some(stats) => {
                let mut sum = Stats::default();
                for s in &stats {
                    sum.merge(s);
                }
                all.merge(&sum);
                Summary {
                    rps,
                    ..sum.summary(1.0)
                }
            }
            None => {
                all_exact = false;
                approximate(&shards, rps)
            }
        };
        actions.push(summary);
    }
    let all = if all_exact {
        Summary {
            rps: all_rps,
            ..all.summary(1.0)
        }
    } else {
        let alls: Vec<&Summary> = windows.iter().map(|(_, w)| &w.all).collect();
        approximate(&alls, all_rps)
    };
    let sum = |f: fn(&Window) -> i64| windows.iter().map(|(_, w)| f(w)).sum::<i64>();
    Window {
        t,
        phase: lead.phase,
        target: windows.iter().map(|(_, w)| w.target).sum(),
        users: windows.iter().map(|(_, w)| w.users).sum(),
        in_flight: sum(|w| w.in_flight),
        sse_open: sum(|w| w.sse_open),
        mcp_open: sum(|w| w.mcp_open),
        dropped: windows.iter().map(|(_, w)| w.dropped).sum(),
        actions,
        all,
        observed: windows
            .iter()
            .find(|(k, _)| Some(*k) == observer)
            .map_or_else(Observed::default, |(_, w)| w.observed.clone()),
        histograms: Vec::new(),
    }
}

/// Live snapshots of several shards (`stampede-tui attach ADDR ADDR …`) as one: the latest windows
/// merged as one second, the totals' counts summed (their percentiles, which cannot be added, not
/// measured), sessions, statuses and failures summed; finished when every shard is.
pub fn merge_snapshots(snapshots: &[&Snapshot]) -> Option<Snapshot> {
    let first = *snapshots.first()?;
    if snapshots.len() == 1 {
        return Some(first.clone());
    }
    let slots = first.slots.len();
    let windows: Vec<(usize, &Window)> = snapshots
        .iter()
        .enumerate()
        .filter_map(|(k, s)| Some((k, s.window.as_ref()?)))
        .collect();
    let observer = windows
        .iter()
        .find(|(_, w)| w.observed != Observed::default())
        .map(|(k, _)| *k);
    let window = windows
        .iter()
        .map(|(_, w)| w.t)
        .max()
        .map(|t| merge_window(t, &windows, slots, observer));
    let totals = (0..slots)
        .map(|slot| {
            let parts: Vec<&Summary> = snapshots.iter().filter_map(|s| s.totals.get(slot)).collect();
            approximate(&parts, parts.iter().map(|p| p.rps).sum())
        })
        .collect();
    let alls: Vec<&Summary> = snapshots.iter().map(|s| &s.totals_all).collect();
    let mut statuses = BTreeMap::new();
    let mut failures = BTreeMap::new();
    for s in snapshots {
        for (k, n) in &s.statuses {
            *statuses.entry(*k).or_default() += n;
        }
        for (k, n) in &s.failures {
            *failures.entry(*k).or_default() += n;
        }
    }
    Some(Snapshot {
        elapsed_s: snapshots.iter().map(|s| s.elapsed_s).fold(0.0, f64::max),
        remaining_s: snapshots.iter().map(|s| s.remaining_s).fold(0.0, f64::max),
        window,
        totals,
        totals_all: approximate(&alls, alls.iter().map(|a| a.rps).sum()),
        sse: sum_figures(snapshots.iter().map(|s| &s.sse), 0),
        mcp: sum_figures(snapshots.iter().map(|s| &s.mcp), 0),
        statuses,
        failures,
        finished: snapshots.iter().all(|s| s.finished),
        ..first.clone()
    })
}

/// Figures of windows without histograms: counts and rates summed, the mean weighted, the maximum the
/// largest; percentiles cannot be added, so they are not measured.
fn approximate(parts: &[&Summary], rps: f64) -> Summary {
    let count: u64 = parts.iter().map(|s| s.count).sum();
    let weighted: f64 = parts.iter().filter_map(|s| s.mean_ms.map(|m| m * s.count as f64)).sum();
    Summary {
        count,
        ok: parts.iter().map(|s| s.ok).sum(),
        expected: parts.iter().map(|s| s.expected).sum(),
        failed: parts.iter().map(|s| s.failed).sum(),
        aborted: parts.iter().map(|s| s.aborted).sum(),
        connect_errors: parts.iter().map(|s| s.connect_errors).sum(),
        bytes_read: parts.iter().filter_map(|s| s.bytes_read).reduce(|a, b| a + b),
        rps,
        mean_ms: (count > 0).then(|| weighted / count as f64),
        min_ms: parts.iter().filter_map(|s| s.min_ms).reduce(f64::min),
        p50_ms: None,
        p90_ms: None,
        p95_ms: None,
        p99_ms: None,
        max_ms: parts.iter().filter_map(|s| s.max_ms).reduce(f64::max),
    }
}

/// Sessions over the shards: counts summed; the peak is the highest sum of the shards' open sessions in
/// one window (the shards' own peaks need not coincide).
fn sum_figures<'a>(parts: impl Iterator<Item = &'a StreamFigures>, peak_open: i64) -> StreamFigures {
    let mut sum = StreamFigures::default();
    for f in parts {
        sum.open += f.open;
        sum.opened += f.opened;
        sum.closed_abrupt += f.closed_abrupt;
        sum.closed_rst += f.closed_rst;
        sum.closed_graceful += f.closed_graceful;
        sum.closed_delete += f.closed_delete;
        sum.closed_undeletable += f.closed_undeletable;
        sum.listen_not_offered += f.listen_not_offered;
        sum.stateless += f.stateless;
        sum.fell_back += f.fell_back;
        sum.mrtr_rounds += f.mrtr_rounds;
        sum.cache_hinted += f.cache_hinted;
        sum.cache_private += f.cache_private;
        sum.ttl_ms_min = match (sum.ttl_ms_min, f.ttl_ms_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        sum.cache_hits += f.cache_hits;
        sum.stream_messages += f.stream_messages;
        sum.server_closed += f.server_closed;
        sum.errored += f.errored;
        sum.reinitialized += f.reinitialized;
        sum.recovered += f.recovered;
        sum.recovery_ms += f.recovery_ms;
        sum.peak_open = sum.peak_open.max(f.peak_open);
    }
    sum.peak_open = sum.peak_open.max(peak_open);
    sum
}
