//! What each `stampede` subcommand does, once its arguments are parsed: each answers
//! `Result<(), CliError>`, and `main.rs` maps that to stderr and an exit code (0 done, 1 could not be
//! carried out or the gate said no, 2 bad input, 99 thresholds failed, 130 interrupted: `cli::EXIT_CODES`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::adhoc::AdHocArgs;
use crate::cli::{CliError, ScenarioArgs};
use crate::data::{Completion, Verdict};
use crate::engine::{self, RunOptions};
use crate::gate::{self, baseline::Baseline};
use crate::results::Results;
use crate::{errln, live, out, outln, output, scenario};

/// `stampede gate`'s arguments.
#[derive(clap::Args)]
pub struct GateArgs {
    /// Results files (gated on their medians when several).
    #[arg(required_unless_present = "run")]
    pub results: Vec<PathBuf>,
    #[arg(long)]
    pub baseline: PathBuf,
    /// Run this scenario (`--repeat` times) instead of reading results.
    #[arg(long, conflicts_with = "results")]
    pub run: Option<PathBuf>,
    #[arg(long, default_value_t = 1, requires = "run")]
    pub repeat: usize,
    /// Overrides for `--run`.
    #[arg(long = "set", value_name = "PATH=VALUE", requires = "run")]
    pub set: Vec<scenario::Override>,
    /// Also write the verdicts as Markdown (for a CI job summary).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Also write the verdicts as JUnit XML (one test case per check).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Replace a speed check's tolerance, e.g. `rps=30%` (repeatable; wider on a CI machine other
    /// than the one that recorded the baseline).
    #[arg(long = "tolerance", value_name = "METRIC=PCT")]
    pub tolerances: Vec<String>,
    /// Fail (exit 1) when the run is faster than the baseline beyond the band, i.e. the baseline is
    /// stale; without it that is a warning (exit 0): a faster run is no regression.
    #[arg(long)]
    pub fail_on_stale: bool,
}

fn usage(context: &str) -> impl Fn(anyhow::Error) -> CliError + '_ {
    move |e| CliError::Usage(format!("{context}: {e:#}"))
}

fn failed(context: &str) -> impl Fn(anyhow::Error) -> CliError + '_ {
    move |e| CliError::Failed(format!("{context}: {e:#}"))
}

/// `stampede validate`: check each file, report every mistake.
pub fn validate(files: &[PathBuf]) -> Result<(), CliError> {
    let mut problems = Vec::new();
    for f in files {
        match scenario::load(f, &[]) {
            Ok(s) => outln!("{}: ok ({}, {} actions)", f.display(), s.name, s.actions.len()),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Usage(problems.join("\n")))
    }
}

/// `stampede baseline`: run the scenario `repeat` times (or read finished runs) and write the baseline.
pub fn baseline(scenario: Option<ScenarioArgs>, repeat: usize, from: &[PathBuf], out: &Path) -> Result<(), CliError> {
    let plan = scenario
        .as_ref()
        .map(ScenarioArgs::load)
        .transpose()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    with_runtime(async move {
        let runs = match (plan, scenario) {
            (Some(plan), Some(args)) => repeat_runs(&plan, &args.scenario, repeat.max(1))
                .await
                .map_err(failed("stampede"))?,
            _ => read_runs_of_one_scenario(from).map_err(usage("stampede baseline"))?,
        };
        let b = Baseline::from_runs(&runs)
            .and_then(|b| b.write(out).map(|_| b))
            .map_err(failed("stampede"))?;
        outln!("baseline of {} over {} runs: {}", b.scenario, b.runs, out.display());
        Ok(())
    })
}

/// `stampede gate`: judge runs (read or made now) against a baseline and the thresholds.
pub fn gate(args: GateArgs) -> Result<(), CliError> {
    let tolerances = gate::check::Tolerances::default()
        .with(&args.tolerances)
        .map_err(|e| CliError::Usage(format!("stampede gate: {e}")))?;
    with_runtime(gate_runs(args, tolerances))
}

async fn gate_runs(args: GateArgs, tolerances: gate::check::Tolerances) -> Result<(), CliError> {
    let usage = |msg: String| CliError::Usage(format!("stampede gate: {msg}"));
    let baseline = Baseline::read(&args.baseline).map_err(|e| usage(format!("{e:#}")))?;
    let runs: Vec<Results> = match &args.run {
        Some(file) => {
            let plan = scenario::load(file, &args.set).map_err(|e| usage(e.to_string()))?;
            repeat_runs(&plan, file, args.repeat.max(1))
                .await
                .map_err(|e| usage(format!("the run failed: {e:#}")))?
        }
        None => args
            .results
            .iter()
            .map(|f| Results::read(f))
            .collect::<anyhow::Result<_>>()
            .map_err(|e| usage(format!("{e:#}")))?,
    };
    let checks = gate::verdict::judge_runs(&baseline, &runs, &tolerances).map_err(|r| usage(r.to_string()))?;
    let stale = if args.fail_on_stale {
        gate::verdict::StalePolicy::Fail
    } else {
        gate::verdict::StalePolicy::Warn
    };
    out!("{}", gate::render::table(&baseline.scenario, &checks, stale));
    for (path, text) in [
        (
            &args.markdown,
            gate::render::markdown(&baseline.scenario, &checks, stale),
        ),
        (&args.junit, gate::render::junit(&baseline.scenario, &checks)),
    ] {
        if let Some(p) = path {
            crate::results::write_file_atomically(p, text.as_bytes()).map_err(|e| usage(format!("{e:#}")))?;
        }
    }
    match gate::verdict::Outcome::of(&checks).exit_code(stale) {
        0 => Ok(()),
        _ => Err(CliError::Rejected),
    }
}

/// `stampede report`: the HTML report of a run, with others overlaid and a baseline's gate.
pub fn report(results: &Path, baseline: Option<&Path>, compare: &[PathBuf], out: &Path) -> Result<(), CliError> {
    let context = "stampede report";
    let runs = std::iter::once(results)
        .chain(compare.iter().map(PathBuf::as_path))
        .map(|path| Results::read(path).map(|r| crate::report::Run::labelled(path, r)))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(usage(context))?;
    let baseline = baseline.map(Baseline::read).transpose().map_err(usage(context))?;
    let page = crate::report::render(&runs, baseline.as_ref());
    crate::results::write_file_atomically(out, page.as_bytes()).map_err(failed(context))?;
    outln!("report: {}", out.display());
    Ok(())
}

/// `stampede compare`: runs side by side, each against the first. An argument with commas
/// (`a.json,b.json,c.json`) is one column of repeated runs: each figure's median and range.
pub fn compare(results: &[PathBuf], markdown: Option<&Path>) -> Result<(), CliError> {
    let mut labels = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut columns = Vec::new();
    for arg in results {
        let text = arg.to_string_lossy();
        let mut runs = Vec::new();
        let mut column = Vec::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let path = Path::new(part);
            let r = Results::read(path).map_err(usage("stampede"))?;
            column.push((path.to_owned(), r.label(path), r.complete));
            names.push(r.scenario.name.clone());
            runs.push(r.metrics());
        }
        labels.push(column_label(&column));
        columns.push(runs);
    }
    let mut scenarios: Vec<&str> = names.iter().map(String::as_str).collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    if scenarios.len() > 1 {
        errln!(
            "stampede compare: note: these runs are of different scenarios ({}): their figures are not like for like",
            scenarios.join(", ")
        );
    }
    let columns: Vec<Vec<&_>> = columns.iter().map(|runs| runs.iter().collect()).collect();
    out!("{}", gate::render::compare(&labels, &columns, false));
    if let Some(md) = markdown {
        crate::results::write_file_atomically(md, gate::render::compare(&labels, &columns, true).as_bytes())
            .map_err(|e| CliError::Usage(format!("stampede: {e:#}")))?;
    }
    Ok(())
}

/// A column's label: its run's; for repeats the file name they share but for a last `-N`
/// (`legacy-1`, `legacy-2` → `legacy ×2`), else the first run's, and how many did not complete.
fn column_label(column: &[(PathBuf, String, bool)]) -> String {
    let [(_, first, _), rest @ ..] = column else {
        return String::new();
    };
    if rest.is_empty() {
        return first.clone();
    }
    let stem = |path: &Path| {
        let stem = path
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned());
        match stem.rsplit_once('-') {
            Some((base, n)) if !base.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base.to_owned(),
            _ => stem,
        }
    };
    let shared = stem(&column[0].0);
    let name = if column.iter().all(|(p, _, _)| stem(p) == shared) {
        &shared
    } else {
        first
    };
    let incomplete = column.iter().filter(|(_, _, complete)| !complete).count();
    let mut label = format!("{name} ×{}", column.len());
    if incomplete > 0 {
        label.push_str(&format!(" ({incomplete} incomplete)"));
    }
    label
}

/// `stampede merge`: the shards' results as one run's, written atomically; the summary and the
/// thresholds judged on the whole (as `run` shows them; `gate` fails on them). Exit 2 for shards that
/// are not of one run, 1 for a partial merge (it is written all the same, marked so).
pub fn merge(files: &[PathBuf], out: &Path) -> Result<(), CliError> {
    let merged = crate::merge::merge_files(files).map_err(|e| CliError::Usage(format!("stampede merge: {e}")))?;
    out!("{}", output::summary(&merged));
    merged.write_atomically(out).map_err(failed("stampede merge"))?;
    outln!("merged results: {}", out.display());
    let info = merged.merged.as_ref().expect("a merge says what it merged");
    if !merged.complete {
        let mut lacking = Vec::new();
        if !info.missing.is_empty() {
            lacking.push(format!("no results of shard {}", info.missing.join(", ")));
        }
        if !info.interrupted.is_empty() {
            lacking.push(format!("shard {} interrupted", info.interrupted.join(", ")));
        }
        return Err(CliError::Failed(format!(
            "stampede merge: the merged run is partial: {}",
            lacking.join("; ")
        )));
    }
    thresholds_held(&merged)
}

/// `stampede run`: run the scenario, print the summary, write the results (also when interrupted).
pub fn run(
    args: ScenarioArgs,
    out: Option<PathBuf>,
    live_addr: Option<SocketAddr>,
    quiet: bool,
) -> Result<(), CliError> {
    let plan = args.load().map_err(|e| CliError::Usage(e.to_string()))?;
    let how = HowToRun {
        file: Some(args.scenario),
        out,
        live_addr,
        quiet,
        json: false,
    };
    init_tracing();
    with_runtime(run_once(plan, how))
}

/// `stampede run --matrix protocol=…`: the scenario once per version, then the runs side by side;
/// the worst exit of the runs (99 when a run's thresholds failed), or at once when one is interrupted.
pub fn run_matrix(args: ScenarioArgs, matrix: &crate::matrix::Matrix, out: &Path, quiet: bool) -> Result<(), CliError> {
    let source = args.scenario.display().to_string();
    let text = std::fs::read_to_string(&args.scenario).map_err(|e| CliError::Usage(format!("{source}: {e}")))?;
    let mut runs = Vec::with_capacity(matrix.versions.len());
    for &version in &matrix.versions {
        let overrides =
            crate::matrix::Matrix::overrides(&text, version).map_err(|e| CliError::Usage(format!("{source}: {e}")))?;
        let mut one = args.clone();
        one.set.extend(overrides);
        runs.push((one.load().map_err(|e| CliError::Usage(e.to_string()))?, version));
    }
    init_tracing();
    with_runtime(async move {
        let mut worst = Ok(());
        let mut files = Vec::with_capacity(runs.len());
        for (plan, version) in runs {
            let file = crate::matrix::Matrix::out_path(out, version);
            outln!("\n== protocol {version}");
            let how = HowToRun {
                file: Some(args.scenario.clone()),
                out: Some(file.clone()),
                live_addr: None,
                quiet,
                json: false,
            };
            match run_once(plan, how).await {
                Err(CliError::Interrupted) => return Err(CliError::Interrupted),
                Err(e @ CliError::ThresholdsFailed(_)) => worst = Err(e),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
            files.push(file);
        }
        outln!("\n== the protocol matrix, each run against the first");
        compare(&files, None)?;
        report(&files[0], None, &files[1..], &out.with_extension("html"))?;
        worst
    })
}

/// `stampede URL …`: the ad-hoc form, run as a scenario of one action; exit 99 when a `--threshold`
/// fails.
pub fn adhoc(args: AdHocArgs) -> Result<(), CliError> {
    let plan = args.scenario()?;
    let how = HowToRun {
        file: None,
        out: args.out,
        live_addr: args.live,
        quiet: args.quiet,
        json: args.json,
    };
    init_tracing();
    with_runtime(async move {
        reachable(&plan).await?;
        run_once(plan, how).await
    })
}

/// A server nobody listens on, or whose certificate is not trusted, is said at once, not after `-n`
/// requests have backed off for minutes (a mistyped port is the usual cause).
async fn reachable(plan: &scenario::Scenario) -> Result<(), CliError> {
    use crate::actions::conn::{ConnectError, probe};
    let base = plan.spec.target.url.as_deref().unwrap_or_default();
    let tls = engine::tls_config(base, &plan.trust).map_err(|e| CliError::Usage(format!("stampede: {e:#}")))?;
    let (mut endpoint, _) = engine::endpoint_of(base, None, plan, tls.as_ref())
        .await
        .map_err(|e| CliError::Failed(format!("stampede: {base}: {e:#}")))?;
    endpoint.connect_timeout = Duration::from_secs(5);
    match probe(&endpoint).await {
        Ok(()) => Ok(()),
        Err(ConnectError::Tls(e)) => Err(CliError::Usage(format!(
            "stampede: {base}: the TLS handshake failed: {e} (--cacert FILE trusts a CA, --insecure a self-signed test server)"
        ))),
        Err(ConnectError::TimedOut) => Err(CliError::Failed(format!(
            "stampede: cannot connect to {base}: no answer in 5 s"
        ))),
        Err(e @ ConnectError::Tcp(_)) => Err(CliError::Failed(format!("stampede: cannot connect to {base}: {e}"))),
    }
}

fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // Colours for a terminal only; a failed write (stderr closed) is dropped, not reported through
        // `eprintln!`, which would panic on the same closed stderr.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .log_internal_errors(false)
        .init();
}

/// What a single run is asked for besides its scenario.
struct HowToRun {
    /// The scenario file, when there is one (not for the ad-hoc form).
    file: Option<PathBuf>,
    out: Option<PathBuf>,
    live_addr: Option<SocketAddr>,
    quiet: bool,
    /// The summary as JSON on stdout instead of the table.
    json: bool,
}

async fn run_once(plan: scenario::Scenario, how: HowToRun) -> Result<(), CliError> {
    let cell = Arc::new(tokio::sync::watch::Sender::new(None));
    if let Some(addr) = how.live_addr {
        let token = std::env::var(live::TOKEN_ENV).ok().filter(|t| !t.is_empty());
        if token.is_none() && !addr.ip().is_loopback() {
            errln!(
                "stampede: the live feed on {addr} can be read by anyone who reaches it: set {} to ask for a token",
                live::TOKEN_ENV
            );
        }
        let bound = live::serve(addr, Arc::clone(&cell), token)
            .await
            .map_err(|e| CliError::Usage(format!("stampede: cannot serve the live feed on {addr}: {e}")))?;
        errln!("live feed on http://{bound}/live, Prometheus metrics on http://{bound}/metrics");
    }
    if !how.quiet {
        tokio::spawn(output::progress(Arc::clone(&cell), Duration::from_secs(5)));
    }
    let (interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(false);
    // SIGINT (Ctrl-C) or SIGTERM (how Kubernetes stops a pod): the results are written either way.
    let signal = exposition::shutdown_signal().map_err(|e| CliError::Failed(format!("stampede: {e}")))?;
    tokio::spawn(async move {
        signal.await;
        errln!("\ninterrupted: stopping the load, writing what was measured");
        interrupt_tx.send_replace(true);
    });
    let source = how
        .file
        .as_ref()
        .map_or_else(|| "the command line".to_owned(), |f| f.display().to_string());
    crate::target::check_environment(&plan).map_err(|e| CliError::Usage(format!("{source}: {e}")))?;
    if let Some(warning) = crate::target::open_files_warning(&plan) {
        errln!("{warning}");
    }
    let output = engine::run(plan, RunOptions { snapshots: Some(cell) }, interrupt_rx)
        .await
        .map_err(|e| CliError::of_run("stampede", e))?;
    // Let the progress line print its last state.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let results = Results::from_run(&output, how.file.as_deref());
    // A scenario's run always keeps its results; the ad-hoc form only when asked (`-o`), as oha.
    let adhoc = how.file.is_none();
    let path = how.out.or_else(|| (!adhoc).then(|| results.default_path()));
    if let Some(path) = &path {
        results.write_atomically(path).map_err(failed("stampede"))?;
    }
    if how.json {
        outln!("{}", output::json_summary(&results, path.as_deref()));
    } else {
        out!(
            "{}",
            if adhoc {
                output::adhoc_summary(&results)
            } else {
                output::summary(&results)
            }
        );
        if let Some(path) = &path {
            outln!("results: {}", path.display());
        }
    }
    match output.completion {
        Completion::Complete => {}
        Completion::Interrupted | Completion::Partial => return Err(CliError::Interrupted),
    }
    thresholds_held(&results)
}

/// A finished run whose thresholds failed ends with exit 99 (k6's code), whoever ran it: a CI job must
/// see it. A shard's are judged on the merge (`stampede merge`), not on its slice of the load.
pub fn thresholds_held(results: &Results) -> Result<(), CliError> {
    if results.load.shard.is_some() {
        return Ok(());
    }
    match results.thresholds.iter().filter(|j| j.verdict == Verdict::Fail).count() {
        0 => Ok(()),
        failed => Err(CliError::ThresholdsFailed(failed)),
    }
}

fn with_runtime(f: impl Future<Output = Result<(), CliError>>) -> Result<(), CliError> {
    tokio::runtime::Runtime::new()
        .map_err(|e| CliError::Failed(format!("stampede: {e}")))?
        .block_on(f)
}

/// Finished runs for a baseline: complete, of one scenario, at least one.
fn read_runs_of_one_scenario(files: &[PathBuf]) -> anyhow::Result<Vec<Results>> {
    anyhow::ensure!(!files.is_empty(), "give a scenario to run, or --from RESULTS…");
    let runs = files
        .iter()
        .map(|f| Results::read(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    for (r, f) in runs.iter().zip(files) {
        anyhow::ensure!(r.complete, "{} is an interrupted run", f.display());
        anyhow::ensure!(
            r.scenario.name == runs[0].scenario.name,
            "{} is of scenario {:?}, {} of {:?}",
            f.display(),
            r.scenario.name,
            files[0].display(),
            runs[0].scenario.name
        );
    }
    Ok(runs)
}

/// Run `plan` `n` times, quietly, one line each.
async fn repeat_runs(plan: &scenario::Scenario, file: &Path, n: usize) -> anyhow::Result<Vec<Results>> {
    let mut runs = Vec::new();
    for i in 1..=n {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let out = engine::run(plan.clone(), RunOptions::default(), rx).await?;
        let r = Results::from_run(&out, Some(file));
        errln!(
            "run {i}/{n}: {} requests, {:.0}/s, p99 {:.1} ms, {} failed, {} connect errors",
            r.totals.count,
            r.totals.rps,
            r.totals.p99_ms.unwrap_or(f64::NAN),
            r.totals.failed,
            r.totals.connect_errors
        );
        runs.push(r);
    }
    Ok(runs)
}

/// `stampede upstream`'s arguments: where to listen and how to behave.
#[derive(clap::Args, Debug, Clone)]
pub struct UpstreamArgs {
    /// Address to listen on (port 0: any free port; the first line printed names it).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: SocketAddr,
    /// Generated tools besides echo, time, sleep, payload, fail and confirm.
    #[arg(long, default_value_t = 0)]
    pub tools: u32,
    /// Latency added to every request: a duration or a range, e.g. 20ms..200ms.
    #[arg(long, default_value = "0s", value_parser = parse_range)]
    pub latency: crate::lang::DurRange,
    /// Latency added to `initialize` instead (a gateway's activation does it).
    #[arg(long, default_value = "0s", value_parser = parse_range)]
    pub initialize_latency: crate::lang::DurRange,
    /// Share of requests answered with an error, 0..1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub error_rate: f64,
    /// Share of requests accepted and never answered, 0..1.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    pub stall_rate: f64,
    /// Streamable HTTP: answer as an SSE stream when the client accepts both.
    #[arg(long)]
    pub sse_replies: bool,
    /// Origins `/mcp`, `/sse` and `/message` accept besides loopback ones, comma separated (`*`:
    /// any); another `Origin` is refused 403.
    #[arg(long, value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// A `subscriptions/listen` stream tells of a list change this often (each kind it opted in
    /// to), e.g. 1s; never when not given.
    #[arg(long, value_parser = parse_duration)]
    pub list_changed_every: Option<std::time::Duration>,
    /// Also serve the official MCP conformance suite's fixtures (its `test_*` tools, `test://`
    /// resources and prompts), so the suite can referee this server.
    #[arg(long)]
    pub conformance: bool,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, crate::lang::DurationError> {
    crate::lang::parse_duration(text)
}

fn parse_range(text: &str) -> Result<crate::lang::DurRange, crate::lang::DurationError> {
    crate::lang::DurRange::parse(text)
}

fn parse_share(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|v| (0.0..=1.0).contains(v))
        .ok_or_else(|| format!("{text:?} is not a share between 0 and 1"))
}

impl UpstreamArgs {
    pub fn knobs(&self) -> crate::upstream_server::Knobs {
        crate::upstream_server::Knobs {
            tools: self.tools,
            latency: self.latency,
            initialize_latency: self.initialize_latency,
            error_rate: self.error_rate,
            stall_rate: self.stall_rate,
            sse_replies: self.sse_replies,
            allowed_origins: self.allowed_origins.clone(),
            list_changed_every: self.list_changed_every,
            conformance: self.conformance,
        }
    }
}

/// `stampede upstream`: serve the built-in upstream MCP server until SIGINT or SIGTERM.
pub fn upstream(args: UpstreamArgs) -> Result<(), CliError> {
    with_runtime(async move {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .map_err(|e| CliError::Usage(format!("stampede upstream: cannot listen on {}: {e}", args.bind)))?;
        let bound = listener
            .local_addr()
            .map_err(|e| CliError::Failed(format!("stampede upstream: {e}")))?;
        // Installed before the address is printed: a supervisor may signal as soon as it reads it.
        let shutdown =
            exposition::shutdown_signal().map_err(|e| CliError::Failed(format!("stampede upstream: {e}")))?;
        outln!("stampede-upstream listening on http://{bound}");
        crate::upstream_server::serve(listener, args.knobs(), shutdown)
            .await
            .map_err(|e| CliError::Failed(format!("stampede upstream: {e}")))
    })
}

/// `stampede export RESULTS --csv DIR`: the run's figures as CSV files.
pub fn export(results: &Path, dir: &Path) -> Result<(), CliError> {
    let r = Results::read(results).map_err(usage("stampede export"))?;
    let written = crate::export::write_csv(&r, dir).map_err(failed("stampede export"))?;
    for path in written {
        outln!("{}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod column_tests {
    use std::path::PathBuf;

    #[test]
    fn repeats_are_labelled_by_the_name_they_share_and_incomplete_ones_are_said() {
        let run = |p: &str, complete| (PathBuf::from(p), format!("{p} label"), complete);
        let label = |c: &[(PathBuf, String, bool)]| super::column_label(c);
        assert_eq!(label(&[run("out/legacy.json", true)]), "out/legacy.json label");
        assert_eq!(
            label(&[run("a/legacy-1.json", true), run("a/legacy-2.json", true)]),
            "legacy ×2"
        );
        // Only a last `-N` is dropped; names that differ otherwise keep the first run's label.
        assert_eq!(
            label(&[run("fixed-v2-1.json", true), run("fixed-v2-2.json", false)]),
            "fixed-v2 ×2 (1 incomplete)"
        );
        assert_eq!(label(&[run("x.json", true), run("y.json", true)]), "x.json label ×2");
    }
}
