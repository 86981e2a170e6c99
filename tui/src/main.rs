use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use stampede_loadgen::cli::ScenarioArgs;
use stampede_loadgen::engine::{self, RunOptions};
use stampede_loadgen::output;
use stampede_loadgen::results::Results;
use stampede_tui::app::{App, Mode};
use stampede_tui::{Inputs, feed, require_tty, run_ui};

/// stampede-tui: watch a stampede run the way you watch `top`.
#[derive(Parser)]
#[command(name = "stampede-tui", version = stampede_loadgen::VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario in this process and show it live; q stops the load and still writes the results.
    Run {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Results file (default results/runs/<scenario>-<timestamp>.json).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Follow a `stampede run --live ADDR` in another terminal.
    Attach {
        #[arg(default_value = "127.0.0.1:9400")]
        addr: String,
    },
    /// Play a finished run back from its results file, with a cursor to move through time.
    Replay { results: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = require_tty() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let outcome = match cli.command {
        Command::Replay { results } => Results::read(&results).and_then(|r| {
            run_ui(
                App::from_results(&r),
                Inputs {
                    snapshots: None,
                    status: None,
                    interrupt: None,
                },
            )
            .map(|_| ExitCode::SUCCESS)
        }),
        Command::Attach { addr } => tokio::runtime::Runtime::new().map_err(Into::into).and_then(|rt| {
            let _guard = rt.enter();
            let (snapshots, status) = feed::attach(addr);
            run_ui(
                App::new(Mode::Attach),
                Inputs {
                    snapshots: Some(snapshots),
                    status: Some(status),
                    interrupt: None,
                },
            )
            .map(|_| ExitCode::SUCCESS)
        }),
        Command::Run { scenario, out } => run(scenario, out),
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("stampede-tui: {e:#}");
        ExitCode::from(1)
    })
}

fn run(args: ScenarioArgs, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let plan = match args.load() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let rt = tokio::runtime::Runtime::new()?;
    let cell = Arc::new(tokio::sync::watch::Sender::new(None));
    let snapshots = cell.subscribe();
    let (interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(false);
    let (status_tx, status_rx) = tokio::sync::watch::channel(None);
    let engine = rt.spawn(async move {
        let output = engine::run(plan, RunOptions { snapshots: Some(cell) }, interrupt_rx).await?;
        let results = Results::from_run(&output, Some(&args.scenario));
        let path = out.unwrap_or_else(|| results.default_path());
        results.write_atomically(&path)?;
        status_tx.send_replace(Some(format!("finished: results in {} — q to quit", path.display())));
        Ok::<_, anyhow::Error>((results, path))
    });
    let _guard = rt.enter();
    let app = run_ui(
        App::new(Mode::Run),
        Inputs {
            snapshots: Some(snapshots),
            status: Some(status_rx),
            interrupt: Some(interrupt_tx),
        },
    )?;
    let (results, path) = rt.block_on(engine)??;
    print!("{}", output::summary(&results));
    println!("results: {}", path.display());
    let _ = app;
    Ok(if results.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(130)
    })
}
