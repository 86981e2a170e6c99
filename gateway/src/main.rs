use std::time::Duration;

use clap::{Parser, Subcommand};
use stampede_gateway::auth::Auth;
use stampede_gateway::config::{AuthArgs, ServeArgs};

/// stampede's reference MCP gateway.
#[derive(Parser)]
#[command(name = "stampede-gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway's HTTP API.
    Serve(Box<ServeArgs>),
    /// Mint a bearer token (HS256 JWT) for the API.
    Token {
        /// The user the token is for.
        #[arg(long, default_value = "admin@example.com")]
        sub: String,
        /// How long it stays valid, e.g. `60m`, `12h`.
        #[arg(long, default_value = "60m", value_parser = humantime::parse_duration)]
        exp: Duration,
        #[command(flatten)]
        auth: AuthArgs,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            tokio::runtime::Runtime::new()?.block_on(stampede_gateway::serve(*args))
        }
        Command::Token { sub, exp, auth } => {
            println!("{}", Auth::new(&auth).mint(&sub, exp));
            Ok(())
        }
    }
}
