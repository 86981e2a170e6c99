//! `--shard I/N`: N slices of one scenario, run side by side, make the whole load — users split in whole
//! users (every slice's peak is its part, and the parts add up to the scenario's users), arrivals split by
//! their place in the schedule (the slices' counts add up to one run's), one shard observing the
//! target — and a bad shard is refused.

use stampede_loadgen::engine::{self, RunOptions};
use stampede_loadgen::results::Results;
use stampede_loadgen::scenario;
use stampede_loadgen::shard::Shard;

async fn run_shard(text: &str, shard: Shard) -> Results {
    let mut s = scenario::parse("shard.toml", text, "shard", &[]).unwrap_or_else(|e| panic!("{e}"));
    s.shard = shard;
    // As `--observe-on 1` (the default) sets it: the first shard observes the target.
    s.observes = shard.index == 1;
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let out = engine::run(s, RunOptions::default(), rx).await.expect("run");
    Results::from_run(&out, None)
}

async fn run_all(text: &str, n: u32) -> Vec<Results> {
    let runs = (1..=n).map(|index| run_shard(text, Shard { index, count: n }));
    futures_util::future::join_all(runs).await
}

const CLOSED: &str = r#"
[target]
spawn = "gateway"
[load]
users = 10
ramp_up = "0s"
duration = "3s"
think_time = "50ms"
[observe]
post_load = "0s"
[[actions]]
kind = "http"
path = "/health"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_of_a_closed_model_run_the_whole_users_between_them() {
    let runs = run_all(CLOSED, 4).await;
    let peaks: Vec<u64> = runs
        .iter()
        .map(|r| r.series.iter().map(|w| w.users).max().unwrap_or(0))
        .collect();
    eprintln!("users per shard: {peaks:?}");
    assert_eq!(peaks, [2, 3, 2, 3], "each shard its whole part of 10 users");
    assert_eq!(runs.iter().map(|r| r.load.peak_target).sum::<f64>(), 10.0);
    for (i, r) in runs.iter().enumerate() {
        assert_eq!(r.load.shard.as_deref(), Some(format!("{}/4", i + 1).as_str()));
        assert_eq!(r.totals.failed, 0);
        assert_eq!(
            r.observed.sources.cpu.is_some(),
            i == 0,
            "only the observing shard reads the target's CPU"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_of_an_open_model_make_the_whole_arrivals() {
    let open = CLOSED
        .replace("users = 10", "model = \"open\"\nrate = 40")
        .replace("think_time = \"50ms\"\n", "");
    let whole = run_shard(&open, Shard::WHOLE).await;
    assert_eq!(whole.load.shard, None, "an unsharded run records no shard");
    let shards = run_all(&open, 4).await;
    let counts: Vec<u64> = shards.iter().map(|r| r.totals.count).collect();
    let sum: u64 = counts.iter().sum();
    eprintln!("whole {} arrivals; shards {counts:?} = {sum}", whole.totals.count);
    // Each shard takes every fourth arrival of the same schedule: equal shares, and together the
    // whole (± the arrival or two at the edge of each run's end).
    assert!(counts.iter().all(|c| c.abs_diff(counts[0]) <= 2), "{counts:?}");
    assert!(sum.abs_diff(whole.totals.count) <= 4, "{sum} vs {}", whole.totals.count);
}

#[test]
fn a_bad_shard_is_refused_with_exit_2() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", "scenarios/smoke.toml", "--shard", "5/4"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("I/N"), "{stderr}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["run", "scenarios/smoke.toml", "--shard", "1/4", "--observe-on", "5"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--observe-on: shard 5 is not one of the 4 shards"),
        "{stderr}"
    );
}
