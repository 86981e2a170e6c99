//! `stampede`: parse the command line, call the library's command, map its end to an exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};
use stampede_loadgen::adhoc::AdHocArgs;
use stampede_loadgen::cli::{self, ScenarioArgs};
use stampede_loadgen::commands::{self, GateArgs, UpstreamArgs};

/// stampede: load testing and diagnostics for MCP gateways.
///
/// One URL, no file (as oha and hey): `stampede http://127.0.0.1:4444/health -c 64 -z 10s`. A scenario:
/// `stampede run scenarios/smoke.toml`.
#[derive(Parser)]
#[command(
    name = "stampede",
    version = stampede_loadgen::VERSION,
    override_usage = "stampede [OPTIONS] <URL>\n       stampede <COMMAND>",
    // The ad-hoc form first: it is what a newcomer from oha, hey or wrk types.
    help_template = "{about-with-newline}\n{usage-heading} {usage}\n\n\
                     One URL, no scenario file:\n{positionals}\n{options}\n\n\
                     Commands:\n{subcommands}{after-help}",
    after_help = stampede_loadgen::cli::EXIT_CODES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    arg_required_else_help = true
)]
struct Cli {
    #[command(flatten)]
    adhoc: AdHocArgs,
    #[command(subcommand)]
    command: Option<Command>,
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
        /// Serve the live feed (GET /snapshot, GET /live) and Prometheus metrics (GET /metrics) here,
        /// e.g. 127.0.0.1:9400.
        #[arg(long)]
        live: Option<SocketAddr>,
        /// No progress line.
        #[arg(long, short)]
        quiet: bool,
        /// Run once per protocol version, every mcp action speaking it, e.g.
        /// `protocol=2025-03-26,2025-06-18,2025-11-25,2026-07-28`: one results file per version (the
        /// `-o` file with the version before its extension), the runs side by side and in one HTML
        /// report (`-o`'s file with `.html`).
        #[arg(long, value_name = "protocol=V,…", requires = "out", conflicts_with = "live")]
        matrix: Option<stampede_loadgen::matrix::Matrix>,
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
    /// Serve the built-in upstream MCP server (HTTP+SSE and Streamable HTTP, REST endpoints), for a
    /// gateway to federate; prints `stampede-upstream listening on http://ADDR` first.
    Upstream(UpstreamArgs),
    /// Add up the results of a run's shards (`run --shard I/N`) into the results of one run: histograms
    /// added, counters summed, windows lined up by wall clock, thresholds judged on the whole.
    /// Exit 0 done, 1 a shard missing or interrupted (written, marked partial), 2 not shards of one run.
    Merge {
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// The merged results file.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Show runs side by side (the change of each against the first). Repeats of one configuration
    /// joined by commas (`a.json,b.json,c.json`) are one column: each figure's median and range.
    Compare {
        #[arg(required = true, num_args = 1..)]
        results: Vec<PathBuf>,
        #[arg(long)]
        markdown: Option<PathBuf>,
    },
    /// Write a run's results as CSV for spreadsheets and pandas: stats.csv (per-action totals),
    /// stats_history.csv (each second) and failures.csv, with Locust's columns where they apply.
    Export {
        results: PathBuf,
        /// The directory to write the CSV files into (created if missing).
        #[arg(long, value_name = "DIR")]
        csv: PathBuf,
    },
    /// Print a shell completion script, e.g. `stampede completions bash > /etc/bash_completion.d/stampede`.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), e.g. `stampede man > stampede.1`.
    Man,
}

/// Exit codes (`cli::EXIT_CODES`): 0 done, 1 the run could not be carried out (or the gate said no), 2
/// bad input, 99 thresholds failed, 130 interrupted — mapped from the command's `CliError` in one place.
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::clap_exit(e),
    };
    let Some(command) = cli.command else {
        return cli::exit(commands::adhoc(cli.adhoc));
    };
    let result = match command {
        Command::Validate { files } => commands::validate(&files),
        Command::Baseline {
            scenario,
            repeat,
            from,
            out,
        } => commands::baseline(scenario, repeat, &from, &out),
        Command::Gate(args) => commands::gate(args),
        Command::Report {
            results,
            baseline,
            compare,
            out,
        } => commands::report(&results, baseline.as_deref(), &compare, &out),
        Command::Merge { results, out } => commands::merge(&results, &out),
        Command::Compare { results, markdown } => commands::compare(&results, markdown.as_deref()),
        Command::Run {
            scenario,
            out: Some(out),
            quiet,
            matrix: Some(matrix),
            ..
        } => commands::run_matrix(scenario, &matrix, &out, quiet),
        Command::Run {
            scenario,
            out,
            live,
            quiet,
            ..
        } => commands::run(scenario, out, live, quiet),
        Command::Upstream(args) => commands::upstream(args),
        Command::Export { results, csv } => commands::export(&results, &csv),
        Command::Completions { shell } => cli::completions(Cli::command(), shell),
        Command::Man => cli::man(Cli::command()),
    };
    cli::exit(result)
}
