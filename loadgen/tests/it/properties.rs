//! Generated input for every parser a user's text reaches (durations, thresholds, templates, `--set`,
//! the target's Prometheus text and /proc/net/tcp tables, scenario files edited at random, results
//! files truncated or edited) and the round trips the results depend on. Each property runs
//! `PROPTEST_CASES` cases (256 by default; `make fuzz` runs many more): never a panic, and every
//! refusal says where.

use std::time::Duration;

use proptest::prelude::*;
use stampede_loadgen::lang::{Context, Template, format_duration, parse_duration};
use stampede_loadgen::record::{Outcome, Sample, Stats};
use stampede_loadgen::results::Results;
use stampede_loadgen::scenario::{self, Override};

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped scenarios, as text.
fn shipped() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A small results file of a real run, as text.
fn results_text() -> String {
    std::fs::read_to_string(root().join("loadgen/tests/data/fixed-small.json")).unwrap()
}

/// An edit of a text: a range deleted, some text inserted, or a character replaced.
#[derive(Debug, Clone)]
enum Edit {
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, String),
    Replace(prop::sample::Index, char),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1usize..40).prop_map(|(i, n)| Edit::Delete(i, n)),
        (
            any::<prop::sample::Index>(),
            "[ -~\n]{1,12}|\"|=|\\[|\\]|\\{|\\}|-5|1e999|\"10 s\""
        )
            .prop_map(|(i, s)| Edit::Insert(i, s)),
        (any::<prop::sample::Index>(), any::<char>()).prop_map(|(i, c)| Edit::Replace(i, c)),
    ]
}

/// The char boundary at or before `i`.
fn boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut t = text.to_owned();
    for e in edits {
        match e {
            Edit::Delete(at, n) => {
                let a = boundary(&t, at.index(t.len() + 1));
                let b = boundary(&t, a + n);
                t.replace_range(a..b, "");
            }
            Edit::Insert(at, s) => {
                let a = boundary(&t, at.index(t.len() + 1));
                t.insert_str(a, s);
            }
            Edit::Replace(at, c) => {
                if !t.is_empty() {
                    let a = boundary(&t, at.index(t.len()));
                    let b = t[a..].chars().next().map_or(a, |ch| a + ch.len_utf8());
                    t.replace_range(a..b, &c.to_string());
                }
            }
        }
    }
    t
}

proptest! {
    #[test]
    fn prop_durations_round_trip_and_anything_else_is_refused(ms in 0u64..10_000_000_000, junk in ".{0,24}") {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        if let Err(e) = parse_duration(&junk) {
            prop_assert!(e.to_string().contains("bad duration"), "{}", e);
        }
    }

    #[test]
    fn prop_thresholds_parse_or_say_why(
        text in ".{0,40}",
        metric in "p50|p99|failure_rate|rps|blocked_queries.max|post_load_cpu.mean|target_rss.settled|target_rss.slope|target_fds.slope",
        op in "<|<=|>|>=|==",
        n in 0u32..100_000,
        unit in "|ms|s|%|MiB|GiB|KiB/min|/min|MB",
    ) {
        if let Err(e) = stampede_loadgen::data::threshold::parse(&text) {
            prop_assert!(e.to_string().contains(&format!("{text:?}")), "{}", e);
        }
        let _ = stampede_loadgen::data::threshold::parse(&format!("{metric} {op} {n}{unit}"));
    }

    #[test]
    fn prop_templates_parse_or_say_why_and_literals_are_themselves(text in ".{0,60}", lit in "[^{}]{0,60}") {
        for context in [Context::Url, Context::Json] {
            if let Err(e) = Template::parse(&text, context) {
                prop_assert!(!e.to_string().is_empty());
            }
            let t = Template::parse(&lit, context).unwrap();
            prop_assert_eq!(t.as_literal(), Some(lit.as_str()));
        }
    }

    #[test]
    fn prop_set_overrides_never_panic_and_each_problem_names_its_field(
        path in "(load|target|observe|setup|actions\\[0\\]|thresholds)\\.?[a-z_]{0,12}|[a-z.\\[\\]0-9]{0,20}",
        value in ".{0,16}",
    ) {
        let smoke = std::fs::read_to_string(root().join("scenarios/smoke.toml")).unwrap();
        if let Ok(o) = format!("{path}={value}").parse::<Override>()
            && let Err(errors) = scenario::parse("smoke.toml", &smoke, "smoke", &[o])
        {
            for e in &errors.0 {
                prop_assert!(!e.field.is_empty() || e.line.is_some(), "{}", e);
            }
        }
    }

    #[test]
    fn prop_prometheus_text_of_any_shape_is_read_without_panic(
        text in "([a-z_]{1,12}(\\{[a-z]{1,5}=\"[ -~]{0,8}\"(,[a-z]{1,5}=\"[a-z]{0,4}\")*\\})? [-+0-9.eEInfNa]{1,10}( [0-9]{1,13})?\n|# [ -~]{0,20}\n|[ -~]{0,30}\n){0,12}",
        values in proptest::collection::vec(-1e12f64..1e12, 1..6),
    ) {
        let _ = stampede_loadgen::observe::prometheus::parse(&text);
        let exposition: String = values.iter().enumerate().map(|(i, v)| format!("m_{i}{{a=\"x\"}} {v}\n")).collect();
        let series = stampede_loadgen::observe::prometheus::parse(&exposition);
        prop_assert_eq!(series.len(), values.len());
        for (s, v) in series.iter().zip(&values) {
            prop_assert_eq!(s.value, *v);
        }
    }

    #[test]
    fn prop_tcp_tables_are_counted_by_port_and_state_and_junk_is_read_without_panic(
        rows in proptest::collection::vec((0usize..3, 0usize..5, any::<bool>()), 0..40),
        junk in "[ -~\n]{0,200}",
    ) {
        use stampede_loadgen::observe::resources::{TcpStates, tcp_states};
        let _ = tcp_states([junk.as_str()], &[4001]);
        let (ports, states) = ([4001u16, 4002, 80], ["01", "06", "08", "0A", "02"]);
        let mut v4 = String::from("  sl  local_address rem_address   st tx_queue rx_queue\n");
        let mut v6 = v4.clone();
        let mut want = TcpStates::default();
        let mut listening = false;
        for (i, (port, state, six)) in rows.iter().enumerate() {
            let (port, state) = (ports[*port], states[*state]);
            if port != 80 {
                match state {
                    "01" => want.established += 1,
                    "06" => want.time_wait += 1,
                    "08" => want.close_wait += 1,
                    "0A" => listening = true,
                    _ => {}
                }
            }
            let (table, ip) = if *six { (&mut v6, "0".repeat(32)) } else { (&mut v4, "0100007F".to_owned()) };
            table.push_str(&format!("{i:4}: {ip}:{port:04X} {ip}:C350 {state} 00000000:00000000 00:00000000\n"));
        }
        prop_assert_eq!(tcp_states([v4.as_str(), v6.as_str()], &[4001, 4002]), listening.then_some(want));
    }

    #[test]
    fn prop_scenario_files_edited_at_random_are_planned_or_refused_with_a_place(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let files = shipped();
        let (name, text) = &files[which.index(files.len())];
        let edited = apply(text, &edits);
        if let Err(errors) = scenario::parse(name, &edited, "edited", &[]) {
            prop_assert!(!errors.0.is_empty());
            for e in &errors.0 {
                prop_assert_eq!(&e.file, name);
                prop_assert!(e.line.is_some() || !e.field.is_empty(), "no place: {}", e);
            }
        }
    }

    #[test]
    fn prop_results_files_truncated_or_edited_are_read_or_refused(
        cut in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(edit(), 0..3),
    ) {
        let text = results_text();
        let at = boundary(&text, cut.index(text.len()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, apply(&text[..at], &edits)).unwrap();
        if let Err(e) = Results::read(&path) {
            prop_assert!(format!("{e:#}").contains("r.json"), "{:#}", e);
        }
    }

    #[test]
    fn prop_merging_histograms_equals_recording_their_union(
        a in proptest::collection::vec((1u64..5_000_000, 0u8..3), 0..300),
        b in proptest::collection::vec((1u64..5_000_000, 0u8..3), 0..300),
    ) {
        let record = |into: &mut Stats, samples: &[(u64, u8)]| {
            for (micros, outcome) in samples {
                into.record(&Sample {
                    latency: Duration::from_micros(*micros),
                    outcome: match outcome {
                        0 => Outcome::Ok,
                        1 => Outcome::Expected,
                        _ => Outcome::Failed(stampede_loadgen::data::FailureKind::Status),
                    },
                    status: Some(200 + u16::from(*outcome)),
                    rpc_error: None,
                    error: None,
                    bytes: Some(*micros % 1000),
                    served_by: None,
                });
            }
        };
        let (mut left, mut right, mut union) = (Stats::default(), Stats::default(), Stats::default());
        record(&mut left, &a);
        record(&mut right, &b);
        record(&mut union, &a);
        record(&mut union, &b);
        left.merge(&right);
        prop_assert_eq!(format!("{:?}", left.summary(1.0)), format!("{:?}", union.summary(1.0)));
        prop_assert_eq!(left.statuses, union.statuses);
        prop_assert_eq!(left.latency, union.latency);
    }
}

#[test]
fn results_survive_a_round_trip_through_json() {
    for name in ["fixed-small.json", "legacy-small.json", "lock-contention-legacy.json"] {
        let path = root().join("loadgen/tests/data").join(name);
        let once = Results::read(&path).unwrap();
        let json = serde_json::to_value(&once).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let again_path = dir.path().join(name);
        once.write_atomically(&again_path).unwrap();
        let again = Results::read(&again_path).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), json, "{name}");
    }
}

#[test]
fn truncated_results_are_refused_by_every_reader_with_exit_2() {
    let text = results_text();
    let dir = tempfile::tempdir().unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_stampede"));
    let tui = bin.with_file_name("stampede-tui");
    for at in [0, 1, text.len() / 3, text.len() / 2, text.len() - 2] {
        let path = dir.path().join(format!("cut-{at}.json"));
        std::fs::write(&path, &text[..boundary(&text, at)]).unwrap();
        let p = path.to_str().unwrap();
        let baseline = root().join("results/baselines/ci-smoke.json");
        let mut commands: Vec<(std::path::PathBuf, Vec<String>)> = vec![
            (
                bin.into(),
                vec![
                    "gate".into(),
                    p.into(),
                    "--baseline".into(),
                    baseline.display().to_string(),
                ],
            ),
            (
                bin.into(),
                vec![
                    "report".into(),
                    p.into(),
                    "-o".into(),
                    dir.path().join("r.html").display().to_string(),
                ],
            ),
            (
                bin.into(),
                vec![
                    "export".into(),
                    p.into(),
                    "--csv".into(),
                    dir.path().join("csv").display().to_string(),
                ],
            ),
            (bin.into(), vec!["compare".into(), p.into(), p.into()]),
        ];
        if tui.exists() {
            commands.push((tui.clone(), vec!["replay".into(), p.into()]));
        }
        for (program, args) in commands {
            let out = std::process::Command::new(&program).args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{} {args:?}: {err}", program.display());
            assert!(
                err.contains(&format!("cut-{at}.json")),
                "{args:?} names the file: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
}
