use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use stampede_loadgen::cli::ScenarioArgs;
use stampede_loadgen::engine::{self, Completion, RunOptions};
use stampede_loadgen::results::Results;
use stampede_loadgen::{live, output, scenario};

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
}

/// Exit codes: 0 done, 1 the run could not be carried out, 2 bad input, 130 interrupted.
fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { files } => {
            let mut ok = true;
            for f in &files {
                match scenario::load(f, &[]) {
                    Ok(s) => println!("{}: ok ({}, {} actions)", f.display(), s.name, s.actions.len()),
                    Err(e) => {
                        eprintln!("{e}");
                        ok = false;
                    }
                }
            }
            if ok { ExitCode::SUCCESS } else { ExitCode::from(2) }
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
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("stampede: {e}");
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
            Ok(bound) => eprintln!("live feed on http://{bound}/live"),
            Err(e) => {
                eprintln!("stampede: cannot serve the live feed on {addr}: {e}");
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
            eprintln!("\ninterrupted: stopping the load, writing what was measured");
            interrupt_tx.send_replace(true);
        }
    });
    eprintln!(
        "{}: starting ({:.0}s of load)",
        plan.name,
        plan.load.duration().as_secs_f64()
    );
    let output = match engine::run(plan, RunOptions { snapshots: Some(cell) }, interrupt_rx).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("stampede: {e:#}");
            return ExitCode::from(1);
        }
    };
    // Let the progress line print its last state.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let results = Results::from_run(&output, Some(&file));
    let path = out.unwrap_or_else(|| results.default_path());
    print!("{}", output::summary(&results));
    if let Err(e) = results.write_atomically(&path) {
        eprintln!("stampede: {e:#}");
        return ExitCode::from(1);
    }
    println!("results: {}", path.display());
    match output.completion {
        Completion::Complete => ExitCode::SUCCESS,
        Completion::Interrupted => ExitCode::from(130),
    }
}
