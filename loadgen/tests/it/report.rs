//! `stampede report` on committed small results files (tests/data: a legacy and a fixed `mixed-4000`
//! at small size on PostgreSQL, a legacy `lock-contention` run with blocking chains, a `ci-smoke` run on
//! SQLite with no PostgreSQL observer): the page is well-formed, holds the charts and tables a person
//! reads, references nothing outside itself — and renders in a real browser.

use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::stampede;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// Run `stampede report ARGS -o DIR/report.html` and return the page.
fn report(dir: &Path, args: &[&Path]) -> String {
    let out = dir.join("report.html");
    let mut cmd = stampede();
    cmd.arg("report");
    for (i, a) in args.iter().enumerate() {
        if i == 1 {
            cmd.arg("--compare");
        }
        cmd.arg(a);
    }
    let output = cmd.arg("-o").arg(&out).output().unwrap();
    assert!(
        output.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(&out).unwrap()
}

/// Run `stampede report RESULTS --baseline BASELINE -o DIR/gate.html` and return the page.
fn report_against(dir: &Path, results: &Path, baseline: &Path) -> String {
    let out = dir.join("gate.html");
    let output = stampede()
        .arg("report")
        .arg(results)
        .arg("--baseline")
        .arg(baseline)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read_to_string(&out).unwrap()
}

fn parse(page: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(page, opts).unwrap_or_else(|e| panic!("the report is not well-formed: {e}"))
}

/// Everything a browser would fetch from elsewhere: elements that load, attributes that point, CSS
/// that imports or loads.
fn external_references(doc: &roxmltree::Document) -> Vec<String> {
    let mut found = Vec::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        let tag = n.tag_name().name();
        if matches!(
            tag,
            "script" | "link" | "img" | "iframe" | "object" | "embed" | "image" | "use"
        ) {
            found.push(format!("<{tag}>"));
        }
        for a in n.attributes() {
            let v = a.value();
            if a.name() == "src" || (a.name() == "href" && !v.starts_with('#')) || v.contains("url(") {
                found.push(format!("{}={v:?}", a.name()));
            }
        }
        if tag == "style" {
            let css = n.text().unwrap_or("");
            for bad in ["url(", "@import", "@font-face"] {
                if css.contains(bad) {
                    found.push(format!("style: {bad}"));
                }
            }
        }
    }
    found
}

fn text_of(doc: &roxmltree::Document) -> String {
    doc.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn legacy_against_fixed_is_well_formed_self_contained_and_holds_charts_and_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let page = report(dir.path(), &[&data("legacy-small.json"), &data("fixed-small.json")]);
    let doc = parse(&page);
    assert_eq!(external_references(&doc), Vec::<String>::new());

    let svgs: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("svg")).collect();
    assert_eq!(
        svgs.len(),
        8,
        "RPS, failures, latency, blocked queries, target CPU, memory, files and sockets, streams"
    );
    let labels: Vec<&str> = svgs.iter().filter_map(|s| s.attribute("aria-label")).collect();
    for want in [
        "Requests per second",
        "Failures per second",
        "Latency",
        "Blocked queries",
        "Target CPU",
        "Target memory",
        "Target files and sockets",
        "Streams",
    ] {
        assert!(labels.contains(&want), "no {want} chart in {labels:?}");
    }
    let cpu = svgs
        .iter()
        .find(|s| s.attribute("aria-label") == Some("Target CPU"))
        .unwrap();
    assert_eq!(
        cpu.descendants().filter(|n| n.has_tag_name("path")).count(),
        2,
        "both runs overlaid on the CPU chart"
    );
    assert!(
        cpu.descendants().any(|n| n.attribute("class") == Some("shade")),
        "the post-load window is shaded"
    );

    // The side-by-side table: legacy, then fixed with its change.
    let table = doc
        .descendants()
        .filter(|n| n.has_tag_name("table"))
        .find(|t| text_of_node(t).contains("blocked queries (max)"))
        .expect("a side-by-side table");
    let head: Vec<String> = table
        .descendants()
        .filter(|n| n.has_tag_name("th"))
        .map(|n| text_of_node(&n))
        .collect();
    assert_eq!(head, ["figure", "legacy-small", "fixed-small"], "labelled by file name");
    let row = |label: &str| -> Vec<String> {
        table
            .descendants()
            .filter(|n| n.has_tag_name("tr"))
            .find(|tr| tr.first_element_child().is_some_and(|td| text_of_node(&td) == label))
            .unwrap_or_else(|| panic!("no row {label}"))
            .children()
            .filter(|n| n.is_element())
            .map(|n| text_of_node(&n))
            .collect()
    };
    let left = row("MCP sessions left open");
    assert_ne!(left[1], "0", "legacy leaves sessions open: {left:?}");
    assert!(left[2].starts_with("0 "), "fixed leaves none: {left:?}");
    let post = row("target CPU after load, settled (%)");
    assert!(post[2].contains("(-"), "fixed comes down against legacy: {post:?}");

    let text = text_of(&doc);
    for section in [
        "Blocking chains seen",
        "Sessions and streams",
        "client, SSE: opened",
        "Statuses and errors by action",
        "spin_detected",
    ] {
        assert!(text.contains(section) || page.contains(section), "no {section}");
    }
}

fn text_of_node(n: &roxmltree::Node) -> String {
    n.descendants()
        .filter(|d| d.is_text())
        .filter_map(|d| d.text())
        .collect::<String>()
        .trim()
        .to_owned()
}

#[test]
fn blocking_chains_are_listed_with_blocker_and_blocked_queries() {
    let dir = tempfile::tempdir().unwrap();
    let page = report(dir.path(), &[&data("lock-contention-legacy.json")]);
    let doc = parse(&page);
    assert_eq!(external_references(&doc), Vec::<String>::new());
    let queries: Vec<String> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("q"))
        .map(|n| text_of_node(&n))
        .collect();
    assert!(!queries.is_empty(), "chains with their queries");
    assert!(
        queries
            .iter()
            .any(|q| q.to_uppercase().contains("UPDATE") || q.to_uppercase().contains("SELECT")),
        "{queries:?}"
    );
    let roles: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("td"))
        .map(|n| text_of_node(&n))
        .filter(|t| t == "blocker" || t == "blocked")
        .collect();
    assert!(roles.contains(&"blocker".to_owned()) && roles.contains(&"blocked".to_owned()));
}

#[test]
fn a_source_that_was_not_configured_is_not_measured_never_zero() {
    let dir = tempfile::tempdir().unwrap();
    // ci-smoke on SQLite: no PostgreSQL observer.
    let replay = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tui/tests/data/replay.json");
    let page = report(dir.path(), &[&replay]);
    let doc = parse(&page);
    let blocked = doc
        .descendants()
        .find(|n| n.has_tag_name("svg") && n.attribute("aria-label") == Some("Blocked queries"))
        .unwrap();
    assert!(text_of_node(&blocked).contains("not measured"));
    assert_eq!(blocked.descendants().filter(|n| n.has_tag_name("path")).count(), 0);
    let card = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("card"))
        .find(|c| text_of_node(c).contains("blocked queries"))
        .unwrap();
    assert!(
        text_of_node(&card).starts_with("not measured"),
        "{}",
        text_of_node(&card)
    );
    assert!(text_of(&doc).contains("not measured (no PostgreSQL observer)"));
}

#[test]
fn with_a_baseline_the_gate_is_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = stampede_loadgen::results::Results::read(&data("fixed-small.json")).unwrap();
    let baseline = stampede_loadgen::gate::baseline::Baseline::from_runs(&[fixed]).unwrap();
    let path = dir.path().join("baseline.json");
    baseline.write(&path).unwrap();
    let page = report_against(dir.path(), &data("fixed-small.json"), &path);
    let doc = parse(&page);
    let text = text_of(&doc);
    assert!(text.contains("Gate against the baseline"));
    assert!(text.contains("PASS"), "a run passes its own baseline");
    assert!(text.contains("baseline (median of 1)"));
    // The legacy run against the fixed baseline fails, on the field's checks.
    // (A failing gate is reported, not an error: `report_against` checks the exit status.)
    let page = report_against(dir.path(), &data("legacy-small.json"), &path);
    assert!(page.contains("FAIL: regression"));
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.html");
    let missing = stampede()
        .args(["report", "no-such-results.json", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no-such-results.json"));
    assert!(!out.exists());
}

#[test]
fn report_and_gate_give_one_judgement_refusals_included() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = stampede_loadgen::results::Results::read(&data("fixed-small.json")).unwrap();
    let mut baseline = stampede_loadgen::gate::baseline::Baseline::from_runs(&[fixed]).unwrap();
    // Recorded with the other build: `gate` refuses (exit 2), and the report says the same instead of
    // judging.
    baseline.environment.build = if baseline.environment.build == "debug" {
        "release"
    } else {
        "debug"
    }
    .into();
    let path = dir.path().join("other-build.json");
    baseline.write(&path).unwrap();
    let gate = stampede()
        .arg("gate")
        .arg(data("fixed-small.json"))
        .arg("--baseline")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(gate.status.code(), Some(2));
    let refusal = String::from_utf8_lossy(&gate.stderr);
    assert!(refusal.contains("speed is not comparable"), "{refusal}");
    let page = report_against(dir.path(), &data("fixed-small.json"), &path);
    let text = text_of(&parse(&page));
    assert!(text.contains("not judged"), "{text}");
    assert!(text.contains("speed is not comparable"), "{text}");
    assert!(!text.contains("PASS"), "no verdict where the gate refuses");

    // A baseline of another scenario: the same.
    let ci = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/baselines/ci-smoke.json");
    let page = report_against(dir.path(), &data("fixed-small.json"), &ci);
    let text = text_of(&parse(&page));
    assert!(text.contains("not judged") && text.contains("ci-smoke"), "{text}");
}

/// A Chromium on this machine: $CHROMIUM, else the usual names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

#[test]
fn the_report_renders_in_headless_chromium() {
    let Some(browser) = chromium() else {
        // CI installs Chromium and sets this, so there the check cannot be skipped.
        assert!(
            std::env::var_os("STAMPEDE_REQUIRE_BROWSER").is_none(),
            "STAMPEDE_REQUIRE_BROWSER is set but no chromium was found"
        );
        eprintln!("skipped: no chromium on this machine (apt install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    report(dir.path(), &[&data("legacy-small.json"), &data("fixed-small.json")]);
    let png = dir.path().join("shot.png");
    let profile = dir.path().join("profile");
    let output = Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", dir.path().join("report.html").display()))
        .output()
        .unwrap();
    assert!(
        output.status.success() && png.exists(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bytes = &buf[..info.buffer_size()];
    let channels = info.color_type.samples();
    let total = bytes.len() / channels;
    let mut colours = std::collections::HashSet::new();
    let mut inked = 0usize;
    for p in bytes.chunks(channels) {
        colours.insert(p[..3].to_vec());
        if p[..3].iter().any(|&c| c < 200) {
            inked += 1;
        }
    }
    assert!(
        (info.width, info.height) == (1200, 1400),
        "{}x{}",
        info.width,
        info.height
    );
    assert!(
        inked * 100 > total,
        "the page is blank: {inked} of {total} pixels inked"
    );
    assert!(
        colours.len() > 20,
        "text, lines and shading in colour: {} colours",
        colours.len()
    );
    // The shaded post-load window (#fff1e5) and the runs' colours made it to the screen.
    assert!(
        colours.contains(&vec![0xff, 0xf1, 0xe5]),
        "no post-load shading on screen"
    );
}

#[test]
fn the_summary_prints_counts_as_whole_numbers() {
    let r = stampede_loadgen::results::Results::read(&data("fixed-small.json")).unwrap();
    let text = stampede_loadgen::output::summary(&r);
    let line = text
        .lines()
        .find(|l| l.starts_with("target metrics:"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("lock conflicts 0,"), "{line}");
    assert!(
        line.contains("MCP sessions (SSE and Streamable HTTP) active max 89 "),
        "{line}"
    );
    assert!(!line.contains(".0"), "{line}");
}

/// The summary a run prints says why answers were expected (the declared statuses and JSON-RPC
/// errors, with their counts), and the generator's line reads as figures with units.
#[test]
fn the_summary_explains_expected_answers() {
    let r = stampede_loadgen::results::Results::read(&data("fixed-small.json")).unwrap();
    let text = stampede_loadgen::output::summary(&r);
    assert!(
        text.contains("rpc tools/call: statuses 200×256; expected 165 (-32602×165, declared in expected_errors)"),
        "{text}"
    );
    assert!(text.contains("generator: CPU "), "{text}");
}
