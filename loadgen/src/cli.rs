//! The command-line surface shared by `stampede run` and `stampede-tui run`: a scenario and its
//! overrides.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

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
    /// Steady duration, e.g. 30s (`--set load.duration=…`). A run's wall time is its setup, the ramps
    /// and this, then at most `load.graceful_stop` (5s unless set: actions still running then are
    /// aborted and counted) and the post-load window (`observe.post_load`).
    #[arg(long)]
    pub duration: Option<String>,
    /// Load threads: the event loops the users run on (`--set load.threads=N`; default one per core).
    #[arg(long, allow_negative_numbers = true)]
    pub threads: Option<i64>,
    /// Run against this gateway instead of the scenario's target (replaces a spawned one).
    #[arg(long)]
    pub target: Option<String>,
    /// Override any scenario field: `--set load.users=200`, `--set target.token=…` (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<Override>,
    /// Run the I-th of N slices of the load (users and arrivals split so the N slices add up to the
    /// whole at every instant), e.g. `--shard 2/4`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::shard::Shard>,
    /// With `--shard`: the shard that runs the observers (the others measure only their own load).
    #[arg(long, value_name = "I", default_value_t = 1, requires = "shard")]
    pub observe_on: u32,
    /// Start the load at this instant (RFC 3339, e.g. 2026-12-01T10:00:00Z), after the setup: shards
    /// given one start have their one-second windows aligned by wall clock.
    #[arg(long, value_name = "TIME", value_parser = parse_instant, conflicts_with = "start_in")]
    pub start_at: Option<SystemTime>,
    /// Start the load this long from now, e.g. 30s (the same for every shard started together).
    #[arg(long, value_name = "DURATION", value_parser = parse_delay)]
    pub start_in: Option<SystemTime>,
    /// With `--shard`: how long a shard other than the first waits for the first one's seed.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = crate::lang::parse_duration, requires = "shard")]
    pub setup_wait: Duration,
}

fn parse_instant(text: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time ({e}), e.g. 2026-12-01T10:00:00Z"))
}

/// Now plus the delay, rounded up to a whole second: shards started by hand in one second share it
/// (for a seeded scenario, `--start-at` names it exactly).
fn parse_delay(text: &str) -> Result<SystemTime, String> {
    let at = SystemTime::now() + crate::lang::parse_duration(text).map_err(|e| e.to_string())?;
    let since = at.duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?;
    Ok(std::time::UNIX_EPOCH + Duration::from_secs(since.as_secs() + u64::from(since.subsec_nanos() > 0)))
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
        if let Some(t) = self.threads {
            out.push(Override::new("load.threads", toml::Value::Integer(t)));
        }
        if let Some(d) = &self.duration {
            out.push(Override::new("load.duration", toml::Value::String(d.clone())));
        }
        out.extend(self.set.iter().cloned());
        out
    }

    pub fn load(&self) -> Result<Scenario, ScenarioErrors> {
        let mut s = scenario::load(&self.scenario, &self.overrides())?;
        s.shard = self.shard.unwrap_or(crate::shard::Shard::WHOLE);
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
        s.start_at = self.start_at.or(self.start_in);
        s.setup_wait = self.setup_wait;
        if !s.shard.is_whole() && s.start_at.is_none() && crate::setup::seeds_anything(&s.setup) {
            return Err(ScenarioErrors(vec![scenario::ScenarioError {
                file: self.scenario.display().to_string(),
                line: None,
                column: None,
                field: "--start-at".to_owned(),
                message: "shards of a scenario that seeds need one common start (--start-at TIME or --start-in 30s): \
                          it names the seed the first shard makes and the others use"
                    .to_owned(),
            }]));
        }
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
    /// The run was carried out and written, and this many of its thresholds failed. Exit 99 (k6's).
    ThresholdsFailed(usize),
    /// Stopped by the user; what was measured was written, marked incomplete. Exit 130.
    Interrupted,
}

/// Every exit code of `stampede` and `stampede-tui`, as `--help` shows it (docs/cli.md has the same table).
pub const EXIT_CODES: &str = "Exit codes:
  0    done: the run finished and every threshold held; the gate passed
  1    the work could not be carried out (target down, setup failed, a file not written),
       or the gate failed (a regression), or a merge lacks a shard
  2    bad input: a flag, a scenario file, a results file
  99   the run finished and was written, but a threshold failed
  130  interrupted (Ctrl-C, SIGTERM, q): what was measured is written, marked incomplete";

impl CliError {
    /// A run that could not be carried out, as `command` says it: bad input is a usage error.
    pub fn of_run(command: &str, e: crate::error::RunError) -> CliError {
        match e {
            crate::error::RunError::BadInput(e) => CliError::Usage(format!("{command}: {e}")),
            crate::error::RunError::Failed(e) => CliError::Failed(format!("{command}: {e:#}")),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Failed(_) | CliError::Rejected => 1,
            CliError::ThresholdsFailed(_) => 99,
            CliError::Interrupted => 130,
        }
    }

    /// The line to print, if the error has one of its own.
    pub fn message(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => Some(m.into()),
            CliError::ThresholdsFailed(n) => Some(format!("stampede: {n} threshold(s) failed (exit 99)").into()),
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

/// A command line clap refused: help and version as clap prints them; a mistake as one line naming
/// it (not clap's usage block, which buries it), exit 2.
pub fn clap_exit(e: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            std::process::ExitCode::from(e.exit_code() as u8)
        }
        _ => {
            let bin = std::env::args()
                .next()
                .and_then(|a| {
                    std::path::Path::new(&a)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                })
                .unwrap_or_else(|| "stampede".into());
            crate::errln!("{bin}: {} ({bin} --help)", first_line(&e.render().to_string()));
            std::process::ExitCode::from(2)
        }
    }
}

fn first_line(text: &str) -> &str {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    line.strip_prefix("error: ").unwrap_or(line)
}

/// `… completions SHELL`: the completion script for `command`, on stdout.
pub fn completions(mut command: clap::Command, shell: clap_complete::Shell) -> Result<(), CliError> {
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, name, &mut script);
    crate::stdio::out(format_args!("{}", String::from_utf8_lossy(&script)));
    Ok(())
}

/// `… man`: the man page of `command` (roff), on stdout.
pub fn man(command: clap::Command) -> Result<(), CliError> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .map_err(|e| CliError::Failed(format!("rendering the man page: {e}")))?;
    crate::stdio::out(format_args!("{}", String::from_utf8_lossy(&page)));
    Ok(())
}
