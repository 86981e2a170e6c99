use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use stampede_loadgen::cli::ScenarioArgs;
use stampede_loadgen::data::Completion;
use stampede_loadgen::engine::{self, RunOptions};
use stampede_loadgen::gate::{self, baseline::Baseline};
use stampede_loadgen::results::Results;
use stampede_loadgen::{errln, live, out, outln, output, scenario};

/// stampede: load testing and diagnostics for MCP gateways.
#[derive(Parser)]
#[command(name = "stampede", version = stampede_loadgen::VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write its results.
    Run {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Results file (default results/runs/<scenario>-<timestamp>.json).
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Serve the live feed (GET /snapshot, GET /live) here, e.g. 127.0.0.1:9400.
        #[arg(long)]
        live: Option<SocketAddr>,
        /// No progress line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check scenario files without running them.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run a scenario N times (or take finished runs, `--from`) and record each metric's median and
    /// run-to-run spread.
    Baseline {
        #[command(flatten)]
        scenario: Option<ScenarioArgs>,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Results files of runs already made (of one scenario), instead of running it: e.g. unchanged
        /// runs interleaved with changed ones, so both see the machine in the same state.
        #[arg(long, num_args = 1.., conflicts_with_all = ["scenario", "repeat"])]
        from: Vec<PathBuf>,
        /// The baseline file, e.g. results/baselines/ci-smoke.json.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Compare a run (or the median of several) with a baseline and the scenario's thresholds.
    /// Exit 0 pass, 1 regression, 2 usage or input error.
    Gate(GateArgs),
    /// Write a self-contained HTML report of a run (charts, verdicts, chains, SSE, statuses), with other
    /// runs overlaid and compared (`--compare`) and a baseline's gate (`--baseline`).
    Report {
        results: PathBuf,
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// More results files to overlay and compare with the first (repeatable).
        #[arg(long, num_args = 1..)]
        compare: Vec<PathBuf>,
        /// The HTML file to write.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Show runs side by side (the change of each against the first).
    Compare {
        #[arg(required = true, num_args = 2..)]
        results: Vec<PathBuf>,
        #[arg(long)]
        markdown: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct GateArgs {
    /// Results files (gated on their medians when several).
    #[arg(required_unless_present = "run")]
    results: Vec<PathBuf>,
    #[arg(long)]
    baseline: PathBuf,
    /// Run this scenario (`--repeat` times) instead of reading results.
    #[arg(long, conflicts_with = "results")]
    run: Option<PathBuf>,
    #[arg(long, default_value_t = 1, requires = "run")]
    repeat: usize,
    /// Overrides for `--run`.
    #[arg(long = "set", value_name = "PATH=VALUE", requires = "run")]
    set: Vec<scenario::Override>,
    /// Also write the verdicts as Markdown (for a CI job summary).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Also write the verdicts as JUnit XML (one test case per check).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Replace a speed check's tolerance, e.g. `rps=30%` (repeatable; wider on a CI machine other
    /// than the one that recorded the baseline).
    #[arg(long = "tolerance", value_name = "METRIC=PCT")]
    tolerances: Vec<String>,
}

/// Exit codes: 0 done, 1 the run could not be carried out, 2 bad input, 130 interrupted.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files } => {
            let mut ok = true;
            for f in &files {
                match scenario::load(f, &[]) {
                    Ok(s) => outln!("{}: ok ({}, {} actions)", f.display(), s.name, s.actions.len()),
                    Err(e) => {
                        errln!("{e}");
                        ok = false;
                    }
                }
            }
            if ok { ExitCode::SUCCESS } else { ExitCode::from(2) }
        }
        Command::Baseline {
            scenario,
            repeat,
            from,
            out,
        } => {
            let plan = match scenario.as_ref().map(ScenarioArgs::load).transpose() {
                Ok(p) => p,
                Err(e) => {
                    errln!("{e}");
                    return ExitCode::from(2);
                }
            };
            with_runtime(async move {
                let runs = match (plan, scenario) {
                    (Some(plan), Some(args)) => match repeat_runs(&plan, &args.scenario, repeat.max(1)).await {
                        Ok(r) => r,
                        Err(e) => {
                            errln!("stampede: {e:#}");
                            return ExitCode::from(1);
                        }
                    },
                    _ => match read_runs_of_one_scenario(&from) {
                        Ok(r) => r,
                        Err(e) => {
                            errln!("stampede baseline: {e:#}");
                            return ExitCode::from(2);
                        }
                    },
                };
                match Baseline::from_runs(&runs).and_then(|b| b.write(&out).map(|_| b)) {
                    Ok(b) => {
                        outln!("baseline of {} over {} runs: {}", b.scenario, b.runs, out.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        errln!("stampede: {e:#}");
                        ExitCode::from(1)
                    }
                }
            })
        }
        Command::Gate(args) => {
            let tolerances = match gate::check::Tolerances::default().with(&args.tolerances) {
                Ok(t) => t,
                Err(e) => {
                    errln!("stampede gate: {e}");
                    return ExitCode::from(2);
                }
            };
            with_runtime(gate(args, tolerances))
        }
        Command::Report {
            results,
            baseline,
            compare,
            out,
        } => report(results, baseline, compare, out),
        Command::Compare { results, markdown } => {
            let mut labels = Vec::new();
            let mut names: Vec<String> = Vec::new();
            let mut runs = Vec::new();
            for path in &results {
                match Results::read(path) {
                    Ok(r) => {
                        labels.push(r.label(path));
                        names.push(r.scenario.name.clone());
                        runs.push(r.metrics());
                    }
                    Err(e) => {
                        errln!("stampede: {e:#}");
                        return ExitCode::from(2);
                    }
                }
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
            out!("{}", gate::report::compare(&labels, &runs, false));
            if let Some(md) = markdown
                && let Err(e) = std::fs::write(&md, gate::report::compare(&labels, &runs, true))
            {
                errln!("stampede: writing {}: {e}", md.display());
                return ExitCode::from(2);
            }
            ExitCode::SUCCESS
        }
        Command::Run {
            scenario,
            out,
            live,
            quiet,
        } => {
            let plan = match scenario.load() {
                Ok(p) => p,
                Err(e) => {
                    errln!("{e}");
                    return ExitCode::from(2);
                }
            };
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
                )
                .with_writer(std::io::stderr)
                // Colours for a terminal only; a failed write (stderr closed) is dropped, not reported
                // through `eprintln!`, which would panic on the same closed stderr.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .log_internal_errors(false)
                .init();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    errln!("stampede: {e}");
                    return ExitCode::from(1);
                }
            };
            runtime.block_on(run(plan, scenario.scenario, out, live, quiet))
        }
    }
}

async fn run(
    plan: scenario::Scenario,
    file: PathBuf,
    out: Option<PathBuf>,
    live_addr: Option<SocketAddr>,
    quiet: bool,
) -> ExitCode {
    let cell = Arc::new(tokio::sync::watch::Sender::new(None));
    if let Some(addr) = live_addr {
        match live::serve(addr, Arc::clone(&cell)).await {
            Ok(bound) => errln!("live feed on http://{bound}/live"),
            Err(e) => {
                errln!("stampede: cannot serve the live feed on {addr}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if !quiet {
        tokio::spawn(output::progress(Arc::clone(&cell), Duration::from_secs(5)));
    }
    let (interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            errln!("\ninterrupted: stopping the load, writing what was measured");
            interrupt_tx.send_replace(true);
        }
    });
    if let Err(e) = stampede_loadgen::target::check_environment(&plan) {
        errln!("{}: {e}", file.display());
        return ExitCode::from(2);
    }
    let output = match engine::run(plan, RunOptions { snapshots: Some(cell) }, interrupt_rx).await {
        Ok(o) => o,
        Err(e) => {
            errln!("stampede: {e:#}");
            return ExitCode::from(exit_code_of(&e));
        }
    };
    // Let the progress line print its last state.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let results = Results::from_run(&output, Some(&file));
    let path = out.unwrap_or_else(|| results.default_path());
    out!("{}", output::summary(&results));
    if let Err(e) = results.write_atomically(&path) {
        errln!("stampede: {e:#}");
        return ExitCode::from(1);
    }
    outln!("results: {}", path.display());
    match output.completion {
        Completion::Complete => ExitCode::SUCCESS,
        Completion::Interrupted => ExitCode::from(130),
    }
}

fn report(results: PathBuf, baseline: Option<PathBuf>, compare: Vec<PathBuf>, out: PathBuf) -> ExitCode {
    let mut runs = Vec::new();
    for path in std::iter::once(&results).chain(&compare) {
        match Results::read(path) {
            Ok(r) => runs.push(stampede_loadgen::report::Run::labelled(path, r)),
            Err(e) => {
                errln!("stampede report: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    let baseline = match baseline.as_deref().map(Baseline::read).transpose() {
        Ok(b) => b,
        Err(e) => {
            errln!("stampede report: {e:#}");
            return ExitCode::from(2);
        }
    };
    let page = stampede_loadgen::report::render(&runs, baseline.as_ref());
    match stampede_loadgen::results::write_file_atomically(&out, page.as_bytes()) {
        Ok(()) => {
            outln!("report: {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            errln!("stampede report: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// 2 for a mistake in what the run was given, 1 for a run that could not be carried out.
fn exit_code_of(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<stampede_loadgen::target::BadInput>().is_some() {
        2
    } else {
        1
    }
}

fn with_runtime(f: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            errln!("stampede: {e}");
            ExitCode::from(1)
        }
    }
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
async fn repeat_runs(plan: &scenario::Scenario, file: &std::path::Path, n: usize) -> anyhow::Result<Vec<Results>> {
    let mut runs = Vec::new();
    for i in 1..=n {
        let (_tx, rx) = tokio::sync::watch::channel(false);
        let out = engine::run(plan.clone(), RunOptions::default(), rx).await?;
        let r = Results::from_run(&out, Some(file));
        errln!(
            "run {i}/{n}: {} requests, {:.0}/s, p99 {:.1} ms, {} failed",
            r.totals.count,
            r.totals.rps,
            r.totals.p99_ms.unwrap_or(f64::NAN),
            r.totals.failed
        );
        runs.push(r);
    }
    Ok(runs)
}

async fn gate(args: GateArgs, tolerances: gate::check::Tolerances) -> ExitCode {
    let usage = |msg: String| {
        errln!("stampede gate: {msg}");
        ExitCode::from(2)
    };
    let GateArgs {
        results: files,
        baseline: baseline_path,
        run,
        repeat,
        set,
        markdown,
        junit,
        ..
    } = args;
    let baseline = match Baseline::read(&baseline_path) {
        Ok(b) => b,
        Err(e) => return usage(format!("{e:#}")),
    };
    let runs: Vec<Results> = match run {
        Some(file) => {
            let plan = match scenario::load(&file, &set) {
                Ok(p) => p,
                Err(e) => return usage(e.to_string()),
            };
            match repeat_runs(&plan, &file, repeat.max(1)).await {
                Ok(r) => r,
                Err(e) => {
                    errln!("stampede gate: the run failed: {e:#}");
                    return ExitCode::from(2);
                }
            }
        }
        None => {
            let mut out = Vec::new();
            for f in &files {
                match Results::read(f) {
                    Ok(r) => out.push(r),
                    Err(e) => return usage(format!("{e:#}")),
                }
            }
            out
        }
    };
    let checks = match gate::verdict::judge_runs(&baseline, &runs, &tolerances) {
        Ok(c) => c,
        Err(refusal) => return usage(refusal.to_string()),
    };
    out!("{}", gate::report::table(&baseline.scenario, &checks));
    for (path, text) in [
        (&markdown, gate::report::markdown(&baseline.scenario, &checks)),
        (&junit, gate::report::junit(&baseline.scenario, &checks)),
    ] {
        if let Some(p) = path
            && let Err(e) = std::fs::write(p, text)
        {
            return usage(format!("writing {}: {e}", p.display()));
        }
    }
    ExitCode::from(gate::verdict::Outcome::of(&checks).exit_code())
}
