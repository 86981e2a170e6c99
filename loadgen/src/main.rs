use clap::Parser;

/// stampede: load testing and diagnostics for MCP gateways.
///
/// The load engine (`stampede run`) is not built yet; start the reference gateway with
/// `stampede-gateway serve` (or `make gateway`).
#[derive(Parser)]
#[command(name = "stampede", version = stampede_loadgen::VERSION)]
struct Cli {}

fn main() {
    Cli::parse();
    eprintln!("stampede {}: no commands yet; see README.md", stampede_loadgen::VERSION);
    std::process::exit(2);
}
