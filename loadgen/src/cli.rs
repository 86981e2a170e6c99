//! The command-line surface shared by `stampede run` and `stampede-tui run`: a scenario and its
//! overrides.

use std::path::PathBuf;

use clap::Args;

use crate::scenario::{self, Override, Scenario, ScenarioErrors};

#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Closed model: users at the steady stage (`--set load.users=N`).
    // Any integer is taken here and judged with the scenario, so `--users -5`, `--users 0` and a file's
    // `users = -5` get the same message.
    #[arg(long, allow_negative_numbers = true)]
    pub users: Option<i64>,
    /// Open model: arrivals per second (`--set load.rate=R`).
    #[arg(long, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Steady duration, e.g. 30s (`--set load.duration=…`).
    #[arg(long)]
    pub duration: Option<String>,
    /// Run against this gateway instead of the scenario's target (replaces a spawned one).
    #[arg(long)]
    pub target: Option<String>,
    /// Override any scenario field: `--set load.users=200`, `--set target.token=…` (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<Override>,
    /// Run the I-th of N slices of the load (users and arrivals split so the N slices add up to the
    /// whole at every instant), e.g. `--shard 2/4`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::lang::Shard>,
    /// With `--shard`: the shard that runs the observers (the others measure only their own load).
    #[arg(long, value_name = "I", default_value_t = 1, requires = "shard")]
    pub observe_on: u32,
}

impl ScenarioArgs {
    pub fn overrides(&self) -> Vec<Override> {
        let mut out = Vec::new();
        if let Some(url) = &self.target {
            out.push(Override::new("target.url", toml::Value::String(url.clone())));
        }
        if let Some(u) = self.users {
            out.push(Override::new("load.users", toml::Value::Integer(u)));
        }
        if let Some(r) = self.rate {
            out.push(Override::new("load.rate", toml::Value::Float(r)));
        }
        if let Some(d) = &self.duration {
            out.push(Override::new("load.duration", toml::Value::String(d.clone())));
        }
        out.extend(self.set.iter().cloned());
        out
    }

    pub fn load(&self) -> Result<Scenario, ScenarioErrors> {
        let mut s = scenario::load(&self.scenario, &self.overrides())?;
        s.shard = self.shard.unwrap_or(crate::lang::Shard::WHOLE);
        if self.observe_on == 0 || self.observe_on > s.shard.count {
            return Err(ScenarioErrors(vec![scenario::ScenarioError {
                file: self.scenario.display().to_string(),
                line: None,
                column: None,
                field: "--observe-on".to_owned(),
                message: format!("shard {} is not one of the {} shards", self.observe_on, s.shard.count),
            }]));
        }
        s.observes = s.shard.index == self.observe_on || s.shard.is_whole();
        Ok(s)
    }
}

/// How a command ended other than well. Every command answers `Result<(), CliError>`; the binary maps
/// it to one line on stderr and an exit code, in one place.
#[derive(Debug)]
pub enum CliError {
    /// A mistake in what the command was given: a scenario, a file, a flag. Exit 2.
    Usage(String),
    /// The work could not be carried out (the target is down, a file cannot be written). Exit 1.
    Failed(String),
    /// The verdict is no (a regression, a stale baseline); the output has said why. Exit 1.
    Rejected,
    /// Stopped by the user; what was measured was written, marked incomplete. Exit 130.
    Interrupted,
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) | CliError::Rejected => 1,
            CliError::Interrupted => 130,
        }
    }

    /// The line to print, if the error has one of its own.
    pub fn message(&self) -> Option<&str> {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => Some(m),
            CliError::Rejected | CliError::Interrupted => None,
        }
    }
}

/// Print the error's line (if any) and answer its exit code: the one mapping of a command's end.
pub fn exit(result: Result<(), CliError>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if let Some(m) = e.message() {
                crate::errln!("{m}");
            }
            std::process::ExitCode::from(e.exit_code())
        }
    }
}
