//! `stampede merge` over real shard processes: four `stampede run --shard I/4` started together against
//! one reference gateway (the first seeds, the others use its seed; all wait for one common start)
//! merge into exactly the sum of their parts — counts added, percentiles those of the union of their
//! histograms, windows on one wall clock — with the target's CPU counted once, and the merged
//! per-second rate follows one process running the whole scenario. A shard missing or interrupted
//! leaves the merge partial, naming it; shards of another scenario are refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use stampede_loadgen::results::{Results, decode_histogram};
use testkit::Proc;

const SECRET: &str = "merge-test-secret";

const SCENARIO: &str = r#"
name = "sharded"
[target]
url = "http://unused.invalid"
jwt_secret_env = "STAMPEDE_MERGE_SECRET"
[setup]
tools = 24
servers = 2
tools_per_server = 4
[load]
users = 8
ramp_up = "0s"
duration = "5s"
think_time = "40ms"
graceful_stop = "2s"
[observe]
post_load = "1s"
settle = "0s"
[thresholds]
all = ["p99 < 5000ms", "failure_rate < 1%"]
[[actions]]
name = "get tool"
kind = "http"
path = "/tools/{tool_id}"
weight = 3
[[actions]]
name = "list servers"
kind = "http"
path = "/servers"
weight = 1
"#;

fn gateway() -> Proc {
    testkit::spawn_gateway(SECRET, &[])
}

fn stampede() -> Command {
    let mut c = testkit::stampede();
    c.env("STAMPEDE_MERGE_SECRET", SECRET);
    c
}

/// `stampede run` of the scenario against `url`, with `extra` arguments, writing `out`.
fn run_cmd(scenario: &Path, url: &str, pid: u32, out: &Path, extra: &[String]) -> Command {
    let mut c = stampede();
    c.arg("run")
        .arg(scenario)
        .args(["--target", url, "--quiet", "--set", &format!("observe.pid={pid}")])
        .args(extra)
        .arg("-o")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn common_start(seconds_ahead: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(seconds_ahead)).to_string()
}

fn merge(files: &[PathBuf], out: &Path) -> Output {
    stampede().arg("merge").args(files).arg("-o").arg(out).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Problems `path` has against the results schema.
fn schema_problems(path: &Path) -> Vec<String> {
    let written: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let schema: serde_json::Value = serde_json::from_str(include_str!("../../../schemas/results.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator
        .iter_errors(&written)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// The steady seconds' mean rate of a run.
fn steady_rate(r: &Results) -> f64 {
    let steady: Vec<f64> = r
        .series
        .iter()
        .filter(|w| w.phase == stampede_loadgen::data::Phase::Steady)
        .map(|w| w.all.rps)
        .collect();
    steady.iter().sum::<f64>() / steady.len().max(1) as f64
}

#[test]
fn four_shards_merge_into_exactly_the_sum_of_their_parts() {
    let gw = gateway();
    let pid = gw.child.id();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("sharded.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();

    // Four processes, one common start a few seconds ahead (the setup of the first comes before it).
    let start = common_start(4);
    let files: Vec<PathBuf> = (1..=4).map(|i| dir.path().join(format!("shard-{i}.json"))).collect();
    let children: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let args = [format!("--shard={}/4", i + 1), format!("--start-at={start}")];
            run_cmd(&scenario, &gw.url, pid, f, &args).spawn().unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "a shard failed:\n{}", text(&out));
    }
    let shards: Vec<Results> = files.iter().map(|f| Results::read(f).unwrap()).collect();
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(s.load.shard.as_deref(), Some(format!("{}/4", i + 1).as_str()));
        assert!(
            s.load.start_lag_ms.unwrap() < 1000.0,
            "shard {} started late: {:?}",
            i + 1,
            s.load
        );
        assert_eq!(s.setup, shards[0].setup, "every shard draws from the first one's seed");
        assert_eq!(
            s.observed.sources.cpu.is_some(),
            i == 0,
            "only shard 1 observes the target"
        );
        assert!(
            s.series.iter().all(|w| w.histograms.len() == s.slots.len()),
            "a shard keeps its windows' histograms"
        );
    }

    let merged_path = dir.path().join("merged.json");
    let out = merge(&files, &merged_path);
    assert!(out.status.success(), "{}", text(&out));
    let merged = Results::read(&merged_path).unwrap();
    for f in [&files[1], &merged_path] {
        let problems = schema_problems(f);
        assert!(
            problems.is_empty(),
            "{} violates the schema:\n{}",
            f.display(),
            problems.join("\n")
        );
    }
    let info = merged.merged.as_ref().unwrap();
    assert!(merged.complete && info.missing.is_empty() && info.interrupted.is_empty());
    assert_eq!(info.observed_by.as_deref(), Some("1/4"));
    assert!(
        info.parts.iter().all(|p| p.offset_s == 0),
        "one common start, one timeline: {info:?}"
    );

    // Counts: exactly the sum of the shards'.
    let sum = |f: fn(&Results) -> u64| shards.iter().map(f).sum::<u64>();
    assert_eq!(merged.totals.count, sum(|r| r.totals.count));
    assert_eq!(merged.totals.ok, sum(|r| r.totals.ok));
    assert_eq!(merged.totals.failed, sum(|r| r.totals.failed));
    assert!(merged.totals.count > 200, "a real load: {:?}", merged.totals);
    assert_eq!(
        merged.load.peak_target, 8.0,
        "2 users a shard make the 8 of the scenario"
    );
    let in_windows: u64 = merged.series.iter().map(|w| w.all.count).sum();
    assert_eq!(
        in_windows, merged.totals.count,
        "every request sits in one second of the merged timeline"
    );
    // Percentiles: those of the union of the shards' histograms, not an average of theirs.
    for (slot, action) in merged.actions.iter().enumerate() {
        assert_eq!(
            action.summary.count,
            shards.iter().map(|r| r.actions[slot].summary.count).sum::<u64>()
        );
        let mut union = stampede_loadgen::record::new_histogram();
        for r in &shards {
            union
                .add(decode_histogram(&r.actions[slot].histogram).unwrap())
                .unwrap();
        }
        let p = |q: f64| Some(union.value_at_quantile(q) as f64 / 1000.0);
        assert_eq!(action.summary.p99_ms, p(0.99), "{}", action.name);
        assert_eq!(action.summary.p50_ms, p(0.50), "{}", action.name);
        assert_eq!(action.summary.max_ms, Some(union.max() as f64 / 1000.0));
    }
    // A merged window's percentiles are exact too (its shards' window histograms added).
    let busiest = merged.series.iter().max_by_key(|w| w.all.count).unwrap();
    assert!(busiest.all.p99_ms.is_some(), "measured, from the windows' histograms");
    // The target's CPU once (shard 1's), the thresholds judged on the whole.
    assert_eq!(merged.observed, shards[0].observed);
    assert!(!merged.thresholds.is_empty() && merged.thresholds.iter().all(|j| j.value.is_some()));
    assert!(text(&out).contains("merged results:"), "{}", text(&out));

    // One process running the whole scenario: the merged per-second rate follows it.
    let whole_path = dir.path().join("whole.json");
    let out = run_cmd(&scenario, &gw.url, pid, &whole_path, &[]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let whole = Results::read(&whole_path).unwrap();
    let (m, w) = (steady_rate(&merged), steady_rate(&whole));
    eprintln!("steady rate: merged {m:.1}/s, one process {w:.1}/s");
    assert!(
        (m - w).abs() <= 0.25 * w,
        "merged {m:.1}/s against one process's {w:.1}/s"
    );

    // Every reader of results reads the merged file.
    let report = dir.path().join("report.html");
    let out = stampede()
        .args(["report"])
        .arg(&merged_path)
        .arg("--compare")
        .arg(&whole_path)
        .arg("-o")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = stampede()
        .arg("compare")
        .arg(&whole_path)
        .arg(&merged_path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_missing_or_interrupted_shard_makes_a_partial_merge_and_another_scenario_is_refused() {
    let gw = gateway();
    let pid = gw.child.id();
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("sharded.toml");
    std::fs::write(&scenario, SCENARIO.replace("duration = \"5s\"", "duration = \"20s\"")).unwrap();
    let start = common_start(3);
    let files: Vec<PathBuf> = (1..=2).map(|i| dir.path().join(format!("shard-{i}.json"))).collect();
    let mut children: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let args = [format!("--shard={}/3", i + 1), format!("--start-at={start}")];
            run_cmd(&scenario, &gw.url, pid, f, &args).spawn().unwrap()
        })
        .collect();
    // Shard 3 never runs; shard 1 and 2 are stopped mid-run (SIGTERM, as Kubernetes stops a pod;
    // SIGINT for the other).
    std::thread::sleep(Duration::from_secs(6));
    for (c, signal) in children.iter().zip(["-INT", "-TERM"]) {
        Command::new("kill")
            .args([signal, &c.id().to_string()])
            .status()
            .unwrap();
    }
    for c in children.drain(..) {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(130), "an interrupted shard:\n{}", text(&out));
    }
    let merged_path = dir.path().join("merged.json");
    let out = merge(&files, &merged_path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("no results of shard 3/3"), "{said}");
    assert!(said.contains("shard 1/3, 2/3 interrupted"), "{said}");
    let merged = Results::read(&merged_path).unwrap();
    assert!(
        schema_problems(&merged_path).is_empty(),
        "{:?}",
        schema_problems(&merged_path)
    );
    assert!(!merged.complete);
    assert_eq!(merged.completion, stampede_loadgen::data::Completion::Partial);
    let info = merged.merged.unwrap();
    assert_eq!(info.missing, ["3/3"]);
    assert_eq!(info.interrupted, ["1/3", "2/3"]);

    // A shard of another scenario, and a whole run, are refused with exit 2.
    let mut other: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files[1]).unwrap()).unwrap();
    other["scenario"]["spec"]["load"]["think_time"] = "1s".into();
    let other_path = dir.path().join("other.json");
    std::fs::write(&other_path, other.to_string()).unwrap();
    let out = merge(&[files[0].clone(), other_path], &dir.path().join("no.json"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not shards of one run"), "{}", text(&out));
    let mut whole: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&files[1]).unwrap()).unwrap();
    whole["load"].as_object_mut().unwrap().remove("shard");
    let whole_path = dir.path().join("whole.json");
    std::fs::write(&whole_path, whole.to_string()).unwrap();
    let out = merge(&[files[0].clone(), whole_path], &dir.path().join("no.json"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not of a shard"), "{}", text(&out));
    assert!(
        !dir.path().join("no.json").exists(),
        "nothing written for a refused merge"
    );
}
