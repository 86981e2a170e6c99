use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory as _, Parser, Subcommand};
use stampede_loadgen::cli::{self, ScenarioArgs};
use stampede_loadgen::engine::{self, RunOptions};
use stampede_loadgen::results::Results;
use stampede_loadgen::scenario::Scenario;
use stampede_loadgen::{errln, out, outln, output};
use stampede_tui::app::{App, Mode};
use stampede_tui::{Inputs, feed, require_tty, run_ui};

/// stampede-tui: watch a stampede run the way you watch `top`.
#[derive(Parser)]
#[command(name = "stampede-tui", version = stampede_loadgen::VERSION, after_help = cli::EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario in this process and show it live; q stops the load and still writes the results.
    Run {
        // Boxed: the scenario's options are most of the enum's size.
        #[command(flatten)]
        scenario: Box<ScenarioArgs>,
        /// Results file (default results/runs/<scenario>-<timestamp>.json).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Follow a `stampede run --live ADDR` in another terminal, or several shards' feeds as one run.
    Attach {
        /// One address, or the live feeds of a run's shards (`--live` of each), shown as one run.
        #[arg(default_value = "127.0.0.1:9400", num_args = 1..)]
        addrs: Vec<String>,
    },
    /// Play a finished run back from its results file, with a cursor to move through time.
    Replay { results: PathBuf },
    /// Print a shell completion script, e.g. `stampede-tui completions bash`.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), e.g. `stampede-tui man > stampede-tui.1`.
    Man,
}

/// Exit codes as `stampede run` (`cli::EXIT_CODES`): 0 done, 1 the run could not be carried out, 2 bad
/// input (checked before the terminal is: a missing file is named even without a TTY), 99 a threshold
/// failed, 130 the run was stopped with q.
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return stampede_loadgen::cli::clap_exit(e),
    };
    // Input first: its mistakes are worth more than "needs a terminal".
    let input = match cli.command {
        Command::Completions { shell } => return stampede_loadgen::cli::exit(cli::completions(Cli::command(), shell)),
        Command::Man => return stampede_loadgen::cli::exit(cli::man(Cli::command())),
        Command::Replay { results } => Results::read(&results).map(|r| Input::Replay(Box::new(r))),
        Command::Attach { addrs } => Ok(Input::Attach(addrs)),
        Command::Run { scenario, out } => match scenario.load() {
            Ok(plan) => stampede_loadgen::target::check_environment(&plan)
                .map_err(|e| anyhow::anyhow!("{}: {e}", scenario.scenario.display()))
                .map(|()| {
                    // Said before the terminal is taken over, where it can be read.
                    if let Some(warning) = stampede_loadgen::target::open_files_warning(&plan) {
                        errln!("{warning}");
                    }
                    Input::Run(Box::new(plan), scenario.scenario, out)
                }),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        },
    };
    let input = match input.and_then(|i| require_tty().map(|()| i)) {
        Ok(i) => i,
        Err(e) => {
            errln!("stampede-tui: {e:#}");
            return ExitCode::from(2);
        }
    };
    let outcome = match input {
        Input::Replay(r) => run_ui(
            App::from_results(&r),
            Inputs {
                snapshots: None,
                status: None,
                interrupt: None,
            },
        )
        .map(|_| ExitCode::SUCCESS),
        Input::Attach(addrs) => tokio::runtime::Runtime::new().map_err(Into::into).and_then(|rt| {
            let _guard = rt.enter();
            let (snapshots, status) = feed::attach(addrs);
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
        Input::Run(plan, file, out) => run(*plan, file, out),
    };
    outcome.unwrap_or_else(|e| {
        errln!("stampede-tui: {e:#}");
        ExitCode::from(1)
    })
}

/// What a command asks for, checked.
enum Input {
    Replay(Box<Results>),
    Attach(Vec<String>),
    Run(Box<Scenario>, PathBuf, Option<PathBuf>),
}

fn run(plan: Scenario, file: PathBuf, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    let cell = Arc::new(tokio::sync::watch::Sender::new(None));
    let snapshots = cell.subscribe();
    let (interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(false);
    // SIGINT or SIGTERM (`kill`, a supervisor) stops the run as `q` does: the load stops, the results
    // are written marked incomplete, the terminal is restored. Installed before the load starts.
    let signalled = interrupt_tx.clone();
    let stop = {
        let _guard = rt.enter();
        exposition::shutdown_signal()?
    };
    rt.spawn(async move {
        stop.await;
        signalled.send_replace(true);
    });
    let (status_tx, status_rx) = tokio::sync::watch::channel(None);
    let engine = rt.spawn(async move {
        let output = engine::run(plan, RunOptions { snapshots: Some(cell) }, interrupt_rx).await?;
        let results = Results::from_run(&output, Some(&file));
        let path = out.unwrap_or_else(|| results.default_path());
        results.write_atomically(&path)?;
        status_tx.send_replace(Some(format!("finished: results in {} — q to quit", path.display())));
        Ok::<_, anyhow::Error>((results, path))
    });
    let _guard = rt.enter();
    run_ui(
        App::new(Mode::Run),
        Inputs {
            snapshots: Some(snapshots),
            status: Some(status_rx),
            interrupt: Some(interrupt_tx),
        },
    )?;
    let (results, path) = rt.block_on(engine)??;
    out!("{}", output::summary(&results));
    outln!("results: {}", path.display());
    if !results.complete {
        return Ok(ExitCode::from(130));
    }
    Ok(cli::exit(stampede_loadgen::commands::thresholds_held(&results)))
}
