use clap::Parser;

/// stampede-tui: the live dashboard for stampede runs (run, attach, replay). Not built yet.
#[derive(Parser)]
#[command(name = "stampede-tui", version = stampede_loadgen::VERSION)]
struct Cli {}

fn main() {
    Cli::parse();
    eprintln!(
        "stampede-tui {}: no commands yet; see README.md",
        stampede_loadgen::VERSION
    );
    std::process::exit(2);
}
