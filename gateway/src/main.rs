use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory as _, Parser, Subcommand};
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
    /// Print a shell completion script, e.g. `stampede-gateway completions bash`.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff), e.g. `stampede-gateway man > stampede-gateway.1`.
    Man,
}

/// Exit 0 when stopped by a signal after draining, 1 when it could not start or serve (the error in one
/// line with its causes — no backtrace, even with RUST_BACKTRACE set: it is a message for a person), 2
/// for a command line it cannot take (one line, as `stampede` says it).
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let outcome = match cli.command {
        Command::Serve(args) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info,sqlx=warn".into())
                        // Behind a transaction pooler a write's BEGIN inside its checkout's is a notice.
                        .add_directive("sqlx::postgres::notice=error".parse().expect("a valid directive")),
                )
                .with_writer(std::io::stderr)
                // Colours only for a person at a terminal, not in a log file.
                .with_ansi(std::io::stderr().is_terminal())
                .log_internal_errors(false)
                .init();
            tokio::runtime::Runtime::new()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(stampede_gateway::serve(*args)))
        }
        Command::Token { sub, exp, auth } => {
            // A closed pipe (`… | head -c 10`) is the end of output, not a failure.
            let _ = writeln!(std::io::stdout(), "{}", Auth::new(&auth).mint(&sub, exp));
            Ok(())
        }
        // Rendered whole, then written: a closed pipe ends the output quietly, as for a token.
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "stampede-gateway", &mut script);
            let _ = std::io::stdout().write_all(&script);
            Ok(())
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map(|()| {
                    let _ = std::io::stdout().write_all(&page);
                })
                .map_err(anyhow::Error::from)
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "stampede-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version as clap prints them; a mistake as one line naming it, exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(e.exit_code() as u8);
    }
    let rendered = e.render().to_string();
    let line = rendered.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let line = line.strip_prefix("error: ").unwrap_or(line);
    let _ = writeln!(std::io::stderr(), "stampede-gateway: {line} (stampede-gateway --help)");
    ExitCode::from(2)
}
