//! The dashboard drawn into ratatui's TestBackend: the main layouts, read as a person would read them.

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use stampede_loadgen::data::{ChainLink, Phase};
use stampede_loadgen::results::Results;
use stampede_tui::app::{App, Mode};
use stampede_tui::ui;

fn replay_app() -> App {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/replay.json");
    let mut app = App::from_results(&Results::read(&path).unwrap());
    app.color = false;
    app
}

fn screen(app: &App, w: u16, h: u16) -> String {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| ui::draw(f, app)).unwrap();
    let buf = term.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

#[test]
fn a_finished_run_at_80_by_24_shows_every_panel() {
    let app = replay_app();
    let s = screen(&app, 80, 24);
    for text in [
        "REPLAY",
        "ci-smoke",
        "Requests/s",
        "Latency (whole run) p50",
        "Failures 0.00%",
        "Status codes",
        "200×",
        "Thresholds",
        "Streams: client",
    ] {
        assert!(s.contains(text), "{text:?} missing at 80x24:\n{s}");
    }
    assert!(s.contains("Target CPU"), "{s}");
}

/// After the run the latency title is the whole run's (not the post-load seconds'), the mean rate is
/// the load's (not diluted by the post-load window), and the axes carry their units.
#[test]
fn a_finished_run_shows_whole_run_figures_and_axes_with_units() {
    use stampede_loadgen::format::ms;
    let mut app = replay_app();
    let s = screen(&app, 160, 48);
    let t = &app.totals;
    let whole = format!(
        "Latency (whole run) p50 {} p95 {} p99 {}",
        ms(t.p50_ms),
        ms(t.p95_ms),
        ms(t.p99_ms)
    );
    assert!(s.contains(&whole), "{whole:?}:\n{s}");
    let loaded: Vec<f64> = app
        .windows
        .iter()
        .filter(|w| w.phase != Phase::PostLoad)
        .map(|w| w.all.rps)
        .collect();
    let mean = loaded.iter().sum::<f64>() / loaded.len() as f64;
    assert!(
        s.contains(&format!("{mean:.0} mean")),
        "mean over the load, {mean:.0}:\n{s}"
    );
    for unit in [" ms", " /s", "% of a core"] {
        assert!(s.contains(unit), "an axis in {unit:?}:\n{s}");
    }
    // Moved back into the run, the title is that second's again.
    key(&mut app, KeyCode::Home);
    assert!(screen(&app, 160, 48).contains("Latency (now)"));
}

#[test]
fn sources_that_were_not_measured_say_so() {
    let app = replay_app();
    let s = screen(&app, 100, 30);
    // The replayed run was on SQLite: no PostgreSQL observer.
    assert!(s.contains("Blocked queries — not measured"), "{s}");
    assert!(s.contains("not measured"));
    let mut no_target = replay_app();
    for w in &mut no_target.windows {
        w.observed = Default::default();
    }
    let s = screen(&no_target, 100, 30);
    assert!(s.contains("Target CPU — not measured"), "{s}");
    assert!(s.contains("server not measured"), "{s}");
}

#[test]
fn the_post_load_phase_shows_in_the_header_and_the_cpu_panel() {
    let app = replay_app();
    assert_eq!(app.phase, Phase::PostLoad, "the cursor starts at the end");
    let s = screen(&app, 100, 30);
    assert!(s.contains("post-load"), "{s}");
    assert!(s.contains("post-load mean"), "{s}");
    // Back to the load: the header says which phase the cursor is in.
    let mut app = app;
    key(&mut app, KeyCode::Home);
    key(&mut app, KeyCode::Right);
    key(&mut app, KeyCode::Right);
    let s = screen(&app, 100, 30);
    assert!(!s.contains("post-load mean"), "no post-load yet at the cursor:\n{s}");
}

#[test]
fn a_live_run_with_blocked_queries_shows_the_chain() {
    let mut app = replay_app();
    app.mode = Mode::Attach;
    app.cursor = None;
    let chain = vec![
        ChainLink {
            pid: 41,
            state: Some("active".into()),
            wait_event_type: Some("Lock".into()),
            age_s: 1.5,
            query: "SELECT id FROM tools WHERE id = $1 FOR UPDATE".into(),
        },
        ChainLink {
            pid: 40,
            state: Some("idle in transaction".into()),
            wait_event_type: None,
            age_s: 3.0,
            query: "UPDATE gateways SET enabled = $2".into(),
        },
    ];
    for (i, w) in app.windows.iter_mut().enumerate() {
        w.observed.blocked_queries = Some(i as u32);
        w.observed.blocking_chain = chain.clone();
    }
    let s = screen(&app, 160, 48);
    assert!(s.contains("Blocked queries 11 now · max 11"), "{s}");
    assert!(s.contains("longest chain (2)"), "{s}");
    assert!(s.contains("waits  41"), "{s}");
    assert!(s.contains("ATTACHED"));
}

#[test]
fn pgbouncer_waits_show_beside_blocked_queries() {
    let mut app = replay_app();
    for (i, w) in app.windows.iter_mut().enumerate() {
        w.observed.blocked_queries = Some(1);
        w.observed.pgbouncer_waiting = Some(i as u32 * 2);
    }
    let last = app.windows.len() as u32 - 1;
    let s = screen(&app, 160, 48);
    assert!(
        s.contains(&format!(
            "Blocked queries 1 now · max 1 · PgBouncer waiting {}",
            last * 2
        )),
        "{s}"
    );
    // Only PgBouncer watched: the panel still draws its waits.
    for w in app.windows.iter_mut() {
        w.observed.blocked_queries = None;
    }
    let s = screen(&app, 160, 48);
    assert!(s.contains("Blocked queries not measured · PgBouncer waiting"), "{s}");
}

#[test]
fn keys_focus_a_panel_change_the_span_pause_and_open_help() {
    let mut app = replay_app();
    key(&mut app, KeyCode::Tab);
    let s = screen(&app, 80, 24);
    assert!(
        s.contains("Requests/s") && !s.contains("Latency ("),
        "one panel full size:\n{s}"
    );
    key(&mut app, KeyCode::Esc);
    let before = app.span_label();
    key(&mut app, KeyCode::Char('-'));
    assert_ne!(app.span_label(), before);
    key(&mut app, KeyCode::Char('?'));
    assert!(screen(&app, 80, 24).contains("Help"));
    key(&mut app, KeyCode::Char('x'));
    assert!(!app.help);

    let mut live = App::new(Mode::Run);
    live.windows = replay_app().windows;
    key(&mut live, KeyCode::Char('p'));
    assert!(live.paused());
    let frozen = live.visible().len();
    live.windows.push(live.windows.last().unwrap().clone());
    assert_eq!(live.visible().len(), frozen, "a paused view does not move");
    assert!(screen(&live, 80, 24).contains("PAUSED"));
}

#[test]
fn no_color_renders_without_colors() {
    let app = replay_app();
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    term.draw(|f| ui::draw(f, &app)).unwrap();
    let buf = term.backend().buffer();
    let colored = buf.content().iter().any(|c| c.fg != ratatui::style::Color::Reset);
    assert!(!colored, "app.color = false (NO_COLOR) draws no colors");
}

#[test]
fn attaching_to_nothing_says_there_is_no_run() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let (_snapshots, mut status) = stampede_tui::feed::attach(vec![format!("127.0.0.1:{port}")]);
    let said = rt.block_on(async {
        loop {
            status.changed().await.unwrap();
            if let Some(s) = status.borrow().clone()
                && !s.starts_with("connecting")
            {
                return s;
            }
        }
    });
    assert!(said.starts_with("no run at 127.0.0.1:"), "{said}");
    assert!(said.contains("stampede run SCENARIO --live"), "{said}");
}

#[test]
fn thresholds_hold_or_fail_right_now() {
    let mut app = replay_app();
    app.thresholds.insert(
        "all".into(),
        vec![
            "p99 < 1ms".into(),
            "failure_rate < 1%".into(),
            "blocked_queries.max == 0".into(),
        ],
    );
    let s = screen(&app, 120, 40);
    assert!(s.contains("Thresholds — 1 failing now"), "{s}");
    assert!(s.contains("FAIL p99 < 1ms"), "{s}");
    assert!(s.contains("pass failure_rate < 1%"), "{s}");
    assert!(s.contains("blocked_queries.max == 0 (not measured)"), "{s}");
}

#[test]
fn at_100_columns_nothing_in_the_header_or_the_help_is_cut() {
    let mut app = replay_app();
    let status = "finished: results in results/runs/ci-smoke-20261128T101500Z.json — q to quit";
    app.status = Some(status.into());
    let s = screen(&app, 100, 30);
    assert!(s.contains(status), "the whole status:\n{s}");
    app.status = None;
    let s = screen(&app, 120, 30);
    assert!(s.contains("q quit · tab panels · +/- span · p pause · ? help"), "{s}");
    let s = screen(&app, 100, 30);
    assert!(s.contains("q quit · ? help"), "the hint shrinks to fit:\n{s}");
    key(&mut app, KeyCode::Char('?'));
    let s = screen(&app, 100, 30);
    for line in [
        "q, Ctrl-C   quit (run: stop the load, write results)",
        "tab         next panel full size; esc: all panels",
        "any key closes the help",
    ] {
        assert!(s.contains(line), "{line:?} whole in the help:\n{s}");
    }
}

#[test]
fn before_any_run_the_header_says_it_waits_instead_of_showing_a_phase() {
    let mut app = App::new(Mode::Attach);
    app.color = false;
    app.status = Some("no run at 127.0.0.1:9400".into());
    let s = screen(&app, 80, 24);
    assert!(s.contains("waiting for a run"), "{s}");
    assert!(!s.contains("ramp-up") && !s.contains("0s elapsed"), "{s}");
}

/// A shard's snapshot: `count` requests so far, all 200, one slot.
fn shard_snapshot(count: u64, finished: bool) -> stampede_loadgen::data::Snapshot {
    use stampede_loadgen::data::{Observed, Phase, Snapshot, Summary, Window};
    let summary = Summary {
        count,
        ok: count,
        rps: count as f64 / 3.0,
        ..Summary::default()
    };
    Snapshot {
        scenario: "sharded".into(),
        target: "http://127.0.0.1:1".into(),
        phase: Phase::Steady,
        elapsed_s: 3.0,
        remaining_s: if finished { 0.0 } else { 2.0 },
        slots: vec!["get".into()],
        window: Some(Window {
            t: 3,
            phase: Phase::Steady,
            target: 2.0,
            users: 2,
            in_flight: 1,
            sse_open: 0,
            mcp_open: 0,
            dropped: 0,
            actions: vec![summary.clone()],
            all: summary.clone(),
            observed: Observed::default(),
            histograms: Vec::new(),
        }),
        totals: vec![summary.clone()],
        totals_all: summary,
        sse: Default::default(),
        mcp: Default::default(),
        statuses: [(200, count)].into(),
        failures: Default::default(),
        thresholds: Default::default(),
        settle_s: 5.0,
        post_load_s: 1.0,
        iterations: None,
        finished,
        run: String::new(),
        latency: Vec::new(),
        taken_at_ms: 0,
    }
}

#[test]
fn attaching_to_several_shards_shows_them_as_one_run() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let cells: Vec<_> = [30, 12]
        .map(|n| {
            std::sync::Arc::new(tokio::sync::watch::Sender::new(Some(std::sync::Arc::new(
                shard_snapshot(n, false),
            ))))
        })
        .into();
    let addrs: Vec<String> = cells
        .iter()
        .map(|c| {
            let any = "127.0.0.1:0".parse().unwrap();
            rt.block_on(stampede_loadgen::live::serve(any, std::sync::Arc::clone(c), None))
                .unwrap()
                .to_string()
        })
        .collect();
    let (mut snapshots, mut status) = stampede_tui::feed::attach(addrs);
    let merged = rt.block_on(async {
        loop {
            snapshots.changed().await.unwrap();
            let s = snapshots.borrow().clone();
            if let Some(s) = s.filter(|s| s.totals_all.count == 42) {
                return s;
            }
        }
    });
    assert_eq!(merged.statuses.get(&200), Some(&42), "statuses summed");
    let window = merged.window.as_ref().unwrap();
    assert_eq!((window.users, window.all.count), (4, 42), "one second of both shards");
    assert_eq!(
        merged.totals_all.p99_ms, None,
        "totals' percentiles cannot be added: not measured"
    );
    // The run has finished when every shard has.
    for (c, n) in cells.iter().zip([30, 12]) {
        c.send_replace(Some(std::sync::Arc::new(shard_snapshot(n, true))));
    }
    let said = rt.block_on(async {
        loop {
            status.changed().await.unwrap();
            if let Some(s) = status.borrow().clone()
                && s.contains("finished")
            {
                return s;
            }
        }
    });
    assert_eq!(said, "the run has finished");
}

#[test]
fn a_merged_run_replays_like_any_run() {
    // Two halves of one run (the replay fixture, once as shard 1/2 and once as 2/2), merged.
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/replay.json");
    let whole: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (1..=2)
        .map(|i| {
            let mut shard = whole.clone();
            shard["load"]["shard"] = format!("{i}/2").into();
            let path = dir.path().join(format!("shard-{i}.json"));
            std::fs::write(&path, shard.to_string()).unwrap();
            path
        })
        .collect();
    let merged = stampede_loadgen::merge::merge_files(&files).unwrap();
    let one = Results::read(&fixture).unwrap();
    assert_eq!(merged.totals.count, 2 * one.totals.count);
    let mut app = App::from_results(&merged);
    app.color = false;
    let s = screen(&app, 100, 30);
    for text in ["REPLAY", "ci-smoke", "Requests/s", "Status codes", "Thresholds"] {
        assert!(s.contains(text), "{text:?} missing:\n{s}");
    }
}
