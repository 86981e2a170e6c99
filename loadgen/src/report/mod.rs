//! `stampede report`: one self-contained HTML page about a run — summary and verdicts, the one-second
//! series as inline SVG charts (post-load window shaded), blocking chains, SSE sessions and their end
//! reasons, statuses and errors — and, with more runs or a baseline, the runs overlaid and a
//! before/after table. No scripts, no style sheets or fonts from elsewhere: it reads offline.

pub mod html;
pub mod svg;

use std::fmt::Write as _;

use crate::data::{Phase, StreamFigures, Verdict, Window};
use crate::format::num;
use crate::gate::{self, baseline::Baseline, check::Tolerances};
use crate::results::Results;
use html::{escape, table};
use svg::{Chart, PALETTE, Reference, Series};

/// A run in the report, under the label it is shown with.
pub struct Run {
    pub label: String,
    pub results: Results,
}

impl Run {
    pub fn labelled(path: &std::path::Path, results: Results) -> Run {
        Run {
            label: results.label(path),
            results,
        }
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("not measured".into(), |v| format!("{v:.1}%"))
}

/// The page. `runs[0]` is the run the report is about; the others are overlaid and compared with it.
pub fn render(runs: &[Run], baseline: Option<&Baseline>) -> String {
    let Some(main) = runs.first() else {
        return html::page("stampede report", "<p>no runs</p>");
    };
    let r = &main.results;
    let mut body = String::with_capacity(64 * 1024);
    let title = format!("stampede report — {}", r.scenario.name);
    let _ = write!(body, "<h1>{}</h1>", escape(&title));
    let _ = write!(
        body,
        "<p class=\"meta\">{} · target {} · started {} · {:.0} s of load · {} build on {} cores{}</p>",
        escape(&main.label),
        escape(&r.target.url),
        escape(&r.started_at),
        r.load.seconds,
        escape(&r.environment.build),
        r.environment.cores,
        if r.complete {
            String::new()
        } else {
            " · <span class=\"bad\">INCOMPLETE: the run was interrupted</span>".into()
        }
    );
    // One run: its headline figures as cards; several: the side-by-side table says it for all.
    if runs.len() == 1 {
        cards(&mut body, r);
    }
    if runs.len() > 1 || baseline.is_some() {
        before_after(&mut body, runs, baseline);
    }
    verdicts(&mut body, main, baseline);
    body.push_str("<h2>Over time</h2><div class=\"grid2\">");
    for chart in charts(runs, baseline) {
        body.push_str(&chart.figure());
    }
    body.push_str("</div>");
    chains(&mut body, runs);
    sse(&mut body, runs);
    statuses(&mut body, r);
    let _ = write!(
        body,
        "<p class=\"meta\">stampede {} ({}) · results schema {}</p>",
        escape(&r.environment.stampede_version),
        escape(r.environment.git_revision.as_deref().unwrap_or("unknown revision")),
        r.schema_version
    );
    html::page(&title, &body)
}

fn cards(body: &mut String, r: &Results) {
    let o = &r.observed;
    let failure_rate = r.totals.failure_rate();
    let cards: [(&str, String, Option<bool>); 8] = [
        ("requests", r.totals.count.to_string(), None),
        ("requests per second", format!("{:.0}", r.totals.rps), None),
        (
            "failure rate",
            failure_rate.map_or("not measured".into(), |f| format!("{:.3}%", f * 100.0)),
            failure_rate.map(|f| f < 0.001),
        ),
        (
            "p50 / p99",
            format!("{} / {} ms", num(r.totals.p50_ms), num(r.totals.p99_ms)),
            None,
        ),
        (
            "blocked queries (max)",
            o.blocked_queries_max.map_or("not measured".into(), |b| b.to_string()),
            o.blocked_queries_max.map(|b| b == 0),
        ),
        ("target CPU during load", pct(o.cpu_load_mean_pct), None),
        (
            "target CPU after load (settled)",
            pct(o.cpu_post_load_settled_mean_pct),
            o.cpu_post_load_settled_mean_pct.map(|c| c < 5.0),
        ),
        (
            "MCP sessions left open",
            num(o.mcp_sessions_active_end),
            o.mcp_sessions_active_end.map(|n| n == 0.0),
        ),
    ];
    body.push_str("<div class=\"cards\">");
    for (k, v, good) in cards {
        let class = match good {
            Some(true) => "v good",
            Some(false) => "v bad",
            None if v.contains("not measured") => "v nm",
            None => "v",
        };
        let _ = write!(
            body,
            "<div class=\"card\"><div class=\"{class}\">{}</div><div class=\"k\">{}</div></div>",
            escape(&v),
            escape(k)
        );
    }
    body.push_str("</div>");
}

fn verdict_cell(v: Verdict) -> String {
    let class = match v {
        Verdict::Pass | Verdict::Stale => "pass",
        Verdict::Fail => "fail",
        _ => "other",
    };
    format!("<span class=\"{class}\">{v}</span>")
}

fn verdicts(body: &mut String, main: &Run, baseline: Option<&Baseline>) {
    let r = &main.results;
    if let Some(b) = baseline {
        // The same judgement as `stampede gate`, refusals included.
        let _ = write!(
            body,
            "<h2>Gate against the baseline ({} runs, {})</h2>",
            b.runs,
            escape(&b.created_at)
        );
        let checks = match gate::verdict::judge_runs(b, std::slice::from_ref(r), &Tolerances::default()) {
            Ok(checks) => checks,
            Err(refusal) => {
                let _ = write!(
                    body,
                    "<p><span class=\"other\">not judged</span>: {} (as <code>stampede gate</code> \
                     refuses, exit 2)</p>",
                    escape(&refusal.to_string())
                );
                return;
            }
        };
        let outcome = gate::verdict::Outcome::of(&checks);
        let class = if outcome != gate::verdict::Outcome::Regression {
            "pass"
        } else {
            "fail"
        };
        let _ = write!(
            body,
            "<p><span class=\"{class}\">{}</span></p>",
            escape(&outcome.to_string())
        );
        body.push_str("<table><thead><tr><th>kind</th><th>check</th><th>baseline</th><th>current</th><th>change</th><th>allowed</th><th>verdict</th></tr></thead><tbody>");
        for c in &checks {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                c.kind,
                escape(&c.name),
                num(c.baseline),
                num(c.current),
                c.change.map_or("-".into(), |x| format!("{:+.1}%", x * 100.0)),
                escape(&c.allowed),
                verdict_cell(c.verdict)
            );
        }
        body.push_str("</tbody></table>");
    } else if !r.thresholds.is_empty() {
        body.push_str("<h2>Thresholds</h2><table><thead><tr><th>scope</th><th>threshold</th><th>value</th><th>verdict</th></tr></thead><tbody>");
        for j in &r.thresholds {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&j.scope),
                escape(&j.threshold),
                num(j.value),
                verdict_cell(j.verdict)
            );
        }
        body.push_str("</tbody></table>");
    }
}

fn before_after(body: &mut String, runs: &[Run], baseline: Option<&Baseline>) {
    let mut labels: Vec<String> = Vec::new();
    let mut metrics = Vec::new();
    if let Some(b) = baseline {
        labels.push(format!("baseline (median of {})", b.runs));
        metrics.push(gate::baseline::medians(&b.metrics));
    }
    for run in runs {
        labels.push(run.label.clone());
        metrics.push(run.results.metrics());
    }
    let mut head = vec!["figure"];
    head.extend(labels.iter().map(String::as_str));
    body.push_str("<h2>Side by side</h2><p class=\"meta\">The change is against the first column.</p>");
    body.push_str(&table(&head, &gate::render::compare_rows(&metrics)));
}

/// A series of one run: a value per window.
fn series(run: &Run, i: usize, label: String, dashed: bool, f: impl Fn(&Window) -> Option<f64>) -> Series {
    Series {
        label,
        color: PALETTE[i % PALETTE.len()],
        dashed,
        points: run.results.series.iter().map(|w| (w.t as f64, f(w))).collect(),
    }
}

/// The "Over time" charts, in page order.
fn charts(runs: &[Run], baseline: Option<&Baseline>) -> Vec<Chart> {
    let c = Charts::new(runs, baseline);
    vec![
        c.rps(),
        c.failures(),
        c.latency(),
        c.blocked(),
        c.cpu(),
        c.memory(),
        c.files(),
        c.sse(),
    ]
}

/// What every chart shares: the runs, the baseline, and the post-load window of the main run.
struct Charts<'a> {
    runs: &'a [Run],
    baseline: Option<&'a Baseline>,
    /// The post-load window of `runs[0]`, shaded on every chart.
    shade: Option<(f64, f64, String)>,
}

/// A window of the load itself, not of the post-load window (the request charts stop where the load did).
fn in_load(w: &Window) -> bool {
    w.phase != Phase::PostLoad
}

impl<'a> Charts<'a> {
    fn new(runs: &'a [Run], baseline: Option<&'a Baseline>) -> Charts<'a> {
        let main = &runs[0].results;
        let last_t = main.series.last().map_or(0.0, |w| w.t as f64);
        let post_load_from = main
            .series
            .iter()
            .find(|w| w.phase == Phase::PostLoad)
            .map(|w| w.t.saturating_sub(1) as f64);
        let shade = post_load_from.map(|from| (from, last_t, "post-load".to_owned()));
        Charts { runs, baseline, shade }
    }

    fn several(&self) -> bool {
        self.runs.len() > 1
    }

    /// A solid series' label: the run's with several runs (the colour is the run), else `what`.
    fn name(&self, run: &Run, what: &str) -> String {
        if self.several() {
            run.label.clone()
        } else {
            what.to_owned()
        }
    }

    /// A dashed series' label: `what`, after the run's label with several runs.
    fn dashed_name(&self, run: &Run, what: &str) -> String {
        format!("{} {what}", if self.several() { &run.label } else { "" })
            .trim()
            .to_owned()
    }

    /// The baseline's median of `metric` over all actions, as a reference line.
    fn base(&self, metric: &str) -> Option<Reference> {
        self.baseline
            .and_then(|b| b.metrics.get("all")?.get(metric))
            .map(|s| Reference {
                label: format!("baseline {}", num(Some(s.median))),
                value: s.median,
            })
    }

    /// One series per run, in the run's colour.
    fn per_run(&self, what: &str, f: impl Fn(&Window) -> Option<f64>) -> Vec<Series> {
        self.runs
            .iter()
            .enumerate()
            .map(|(i, r)| series(r, i, self.name(r, what), false, &f))
            .collect()
    }

    /// Two series per run in the run's colour: `solid` and, dashed, `dashed`.
    fn per_run_pair(
        &self,
        (solid, f_solid): (&str, impl Fn(&Window) -> Option<f64>),
        (dashed, f_dashed): (&str, impl Fn(&Window) -> Option<f64>),
    ) -> Vec<Series> {
        self.runs
            .iter()
            .enumerate()
            .flat_map(|(i, r)| {
                [
                    series(r, i, self.name(r, solid), false, &f_solid),
                    series(r, i, self.dashed_name(r, dashed), true, &f_dashed),
                ]
            })
            .collect()
    }

    fn chart(&self, title: &str, unit: &str, series: Vec<Series>, reference: Option<Reference>) -> Chart {
        Chart {
            title: title.into(),
            unit: unit.into(),
            series,
            shade: self.shade.clone(),
            reference,
        }
    }

    fn rps(&self) -> Chart {
        self.chart(
            "Requests per second",
            "completed/s",
            self.per_run("all actions", |w| in_load(w).then_some(w.all.rps)),
            self.base("rps"),
        )
    }

    fn failures(&self) -> Chart {
        self.chart(
            "Failures per second",
            "per second; dashed: expected outcomes such as 409",
            self.per_run_pair(
                ("failed", |w| in_load(w).then_some(w.all.failed as f64)),
                ("expected", |w| in_load(w).then_some(w.all.expected as f64)),
            ),
            None,
        )
    }

    /// Several runs: their p99s; one run: its p50, p95 and p99 in colours of their own.
    fn latency(&self) -> Chart {
        let latency = if self.several() {
            self.runs
                .iter()
                .enumerate()
                .map(|(i, r)| series(r, i, format!("{} p99", r.label), false, |w| w.all.p99_ms))
                .collect()
        } else {
            let r = &self.runs[0];
            vec![
                Series {
                    color: PALETTE[2],
                    ..series(r, 0, "p50".into(), false, |w| w.all.p50_ms)
                },
                Series {
                    color: PALETTE[3],
                    ..series(r, 0, "p95".into(), false, |w| w.all.p95_ms)
                },
                Series {
                    color: PALETTE[1],
                    ..series(r, 0, "p99".into(), false, |w| w.all.p99_ms)
                },
            ]
        };
        let reference = self.base("p99").map(|r| Reference {
            label: format!("{} (p99)", r.label),
            ..r
        });
        self.chart("Latency", "ms", latency, reference)
    }

    fn blocked(&self) -> Chart {
        let blocked = |w: &Window| w.observed.blocked_queries.map(f64::from);
        let pgbouncer = self.runs.iter().any(|r| r.results.observed.sources.pgbouncer.is_some());
        if pgbouncer {
            // Beside the backends waiting on a lock, the clients that cannot even get a connection.
            return self.chart(
                "Blocked queries",
                "solid: backends waiting on a lock; dashed: clients waiting in PgBouncer's pools",
                self.per_run_pair(
                    ("blocked", blocked),
                    ("PgBouncer waiting", |w| w.observed.pgbouncer_waiting.map(f64::from)),
                ),
                None,
            );
        }
        self.chart(
            "Blocked queries",
            "backends waiting on a lock",
            self.per_run("blocked", blocked),
            None,
        )
    }

    fn cpu(&self) -> Chart {
        self.chart(
            "Target CPU",
            "% of one core",
            self.per_run("target CPU", |w| w.observed.cpu_pct),
            None,
        )
    }

    fn memory(&self) -> Chart {
        self.chart(
            "Target memory",
            "MiB resident",
            self.per_run("resident", |w| {
                w.observed.target_rss_bytes.map(|b| b as f64 / (1024.0 * 1024.0))
            }),
            None,
        )
    }

    fn files(&self) -> Chart {
        self.chart(
            "Target files and sockets",
            "solid: open files; dashed: sockets in CLOSE_WAIT (a client gone, unseen)",
            self.per_run_pair(
                ("open files", |w| w.observed.target_fds.map(f64::from)),
                ("CLOSE_WAIT", |w| w.observed.tcp_close_wait.map(f64::from)),
            ),
            None,
        )
    }

    fn sse(&self) -> Chart {
        self.chart(
            "Streams",
            "solid: server sessions active; dashed: client sessions open (SSE and Streamable HTTP)",
            self.per_run_pair(
                ("server sessions", |w| w.observed.mcp_sessions_active),
                ("client", |w| Some((w.sse_open + w.mcp_open) as f64)),
            ),
            None,
        )
    }
}

fn chains(body: &mut String, runs: &[Run]) {
    body.push_str("<h2>Blocking chains seen</h2>");
    for run in runs {
        let o = &run.results.observed;
        let _ = write!(body, "<p><b>{}</b>: ", escape(&run.label));
        if o.sources.postgres.is_none() && o.blocked_queries_max.is_none() {
            body.push_str("<span class=\"nm\">not measured (no PostgreSQL observer)</span></p>");
            continue;
        }
        if o.blocking_chains.is_empty() {
            body.push_str("none: no query waited on a lock.</p>");
            continue;
        }
        let _ = write!(
            body,
            "{} distinct chains, longest first; blocked queries max {}, longest wait {} s.</p>",
            o.blocking_chains.len(),
            o.blocked_queries_max.map_or("not measured".into(), |b| b.to_string()),
            num(o.longest_lock_wait_s)
        );
        body.push_str("<table class=\"left\"><thead><tr><th>chain</th><th>link</th><th>pid</th><th>state</th><th>waiting on</th><th>age (s)</th><th>query</th></tr></thead><tbody>");
        for (c, chain) in o.blocking_chains.iter().enumerate().take(5) {
            for (l, link) in chain.iter().enumerate() {
                let role = if l + 1 == chain.len() { "blocker" } else { "blocked" };
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{role}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td class=\"q\">{}</td></tr>",
                    c + 1,
                    link.pid,
                    escape(link.state.as_deref().unwrap_or("-")),
                    escape(link.wait_event_type.as_deref().unwrap_or("-")),
                    link.age_s,
                    escape(&link.query)
                );
            }
        }
        body.push_str("</tbody></table>");
    }
}

/// One of the client-side session figures, read from a transport's totals.
type ClientFigure = fn(&StreamFigures) -> i64;
/// A transport's totals in a run.
type Transport = fn(&Run) -> &StreamFigures;

fn sse(body: &mut String, runs: &[Run]) {
    body.push_str("<h2>Sessions and streams</h2>");
    let mut reasons: Vec<String> = runs
        .iter()
        .flat_map(|r| r.results.observed.mcp_session_ends.keys().cloned())
        .collect();
    reasons.sort();
    reasons.dedup();
    let mut head = vec!["figure"];
    head.extend(runs.iter().map(|r| r.label.as_str()));
    let mut rows: Vec<Vec<String>> = Vec::new();
    let client: [(&str, ClientFigure); 17] = [
        ("opened", |s| s.opened as i64),
        ("of which stateless (2026-07-28)", |s| s.stateless as i64),
        ("auto: fell back to initialize", |s| s.fell_back as i64),
        ("input rounds (MRTR)", |s| s.mrtr_rounds as i64),
        ("results with caching hints", |s| s.cache_hinted as i64),
        ("answered from the client cache", |s| s.cache_hits as i64),
        ("messages on held streams", |s| s.stream_messages as i64),
        ("peak open at once", |s| s.peak_open),
        ("dropped abruptly", |s| s.closed_abrupt as i64),
        ("reset (RST)", |s| s.closed_rst as i64),
        ("closed gracefully", |s| s.closed_graceful as i64),
        ("deleted (DELETE)", |s| s.closed_delete as i64),
        ("left: no DELETE offered (405)", |s| s.closed_undeletable as i64),
        ("no GET stream offered (405)", |s| s.listen_not_offered as i64),
        ("ended by the server", |s| s.server_closed as i64),
        ("ended by an error", |s| s.errored as i64),
        ("re-initialized after 404", |s| s.reinitialized as i64),
    ];
    let transports: [(&str, Transport); 2] = [("SSE", |r| &r.results.sse), ("Streamable HTTP", |r| &r.results.mcp)];
    for (transport, figures) in transports {
        if runs.iter().all(|r| figures(r).opened == 0) {
            continue;
        }
        for (label, f) in client {
            let mut row = vec![format!("client, {transport}: {label}")];
            row.extend(runs.iter().map(|r| f(figures(r)).to_string()));
            rows.push(row);
        }
    }
    let mut row = vec!["server: sessions active at most".to_owned()];
    row.extend(runs.iter().map(|r| num(r.results.observed.mcp_sessions_active_max)));
    rows.push(row);
    let mut row = vec!["server: sessions left at the end".to_owned()];
    row.extend(runs.iter().map(|r| num(r.results.observed.mcp_sessions_active_end)));
    rows.push(row);
    for reason in &reasons {
        let mut row = vec![format!("server: ended, {reason}")];
        row.extend(runs.iter().map(|r| {
            let o = &r.results.observed;
            if o.sources.metrics.is_none() {
                "not measured".to_owned()
            } else {
                num(Some(o.mcp_session_ends.get(reason).copied().unwrap_or(0.0)))
            }
        }));
        rows.push(row);
    }
    body.push_str(&table(&head, &rows));
}

fn statuses(body: &mut String, r: &Results) {
    body.push_str("<h2>Statuses and errors by action</h2>");
    let rows: Vec<Vec<String>> = r
        .actions
        .iter()
        .map(|a| {
            let list = |items: Vec<String>| {
                if items.is_empty() {
                    "-".to_owned()
                } else {
                    items.join(", ")
                }
            };
            vec![
                a.name.clone(),
                a.summary.count.to_string(),
                a.summary.ok.to_string(),
                a.summary.expected.to_string(),
                a.summary.failed.to_string(),
                num(a.summary.p99_ms),
                list(a.statuses.iter().map(|(s, n)| format!("{s}×{n}")).collect()),
                list(a.failures.iter().map(|(k, n)| format!("{}×{n}", k.label())).collect()),
                list(a.rpc_errors.iter().map(|(c, n)| format!("{c}×{n}")).collect()),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "action",
            "count",
            "ok",
            "expected",
            "failed",
            "p99 (ms)",
            "statuses",
            "failures",
            "JSON-RPC errors",
        ],
        &rows,
    ));
    let mut errors: Vec<(&str, &str, u64)> = r
        .actions
        .iter()
        .flat_map(|a| a.errors.iter().map(move |(e, n)| (a.name.as_str(), e.as_str(), *n)))
        .collect();
    if !errors.is_empty() {
        errors.sort_by_key(|e| std::cmp::Reverse(e.2));
        let rows: Vec<Vec<String>> = errors
            .iter()
            .take(20)
            .map(|(a, e, n)| vec![(*a).to_owned(), n.to_string(), (*e).to_owned()])
            .collect();
        body.push_str("<p>Most frequent error messages:</p>");
        body.push_str(&table(&["action", "count", "message"], &rows));
    }
}
