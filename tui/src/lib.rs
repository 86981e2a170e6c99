//! stampede-tui: a terminal dashboard over stampede's snapshots — of a run in this process, of a
//! `stampede run --live` elsewhere, or of a finished run's results file. The view only reads snapshots
//! (a watch channel the engine publishes once a second); it never touches the load's hot path.

pub mod app;
pub mod feed;
pub mod ui;

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyEventKind};
use stampede_loadgen::data::Snapshot;
use tokio::sync::watch;

use app::{App, Command, Mode};

/// Restores the terminal when dropped — on return, on error, and (through ratatui's panic hook) on panic.
struct TerminalGuard(ratatui::DefaultTerminal);

impl TerminalGuard {
    fn new() -> TerminalGuard {
        TerminalGuard(ratatui::init())
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Refuse a non-terminal with a clear message instead of writing escape codes into a pipe.
pub fn require_tty() -> anyhow::Result<()> {
    if std::io::stdout().is_terminal() && std::io::stdin().is_terminal() {
        Ok(())
    } else {
        anyhow::bail!(
            "stampede-tui needs an interactive terminal (stdin and stdout are not both a TTY); \
             for a headless run use `stampede run`, which prints progress lines"
        )
    }
}

/// What the UI loop reads besides keys.
pub struct Inputs {
    pub snapshots: Option<watch::Receiver<Option<Arc<Snapshot>>>>,
    /// A line to show in the header (feed state, where the results went).
    pub status: Option<watch::Receiver<Option<String>>>,
    /// Run mode: asks the engine to stop.
    pub interrupt: Option<watch::Sender<bool>>,
}

/// The newest value of a watch channel if it is one not read yet. A channel whose sender is gone still
/// holds its last value — the run's final snapshot, "finished: results in …" — which is read once; then
/// the receiver is dropped. (`has_changed()` is an error once the sender is gone, so treating that error
/// as "nothing new" loses exactly the last value.)
fn take_new<T: Clone>(rx: &mut Option<watch::Receiver<T>>) -> Option<T> {
    let r = rx.as_mut()?;
    match r.has_changed() {
        Ok(true) => Some(r.borrow_and_update().clone()),
        Ok(false) => None,
        Err(_) => {
            let last = r.borrow_and_update();
            let value = last.has_changed().then(|| last.clone());
            drop(last);
            *rx = None;
            value
        }
    }
}

/// Draw and handle keys until the person quits (run mode: until the stopped run has finished).
pub fn run_ui(mut app: App, mut inputs: Inputs) -> anyhow::Result<App> {
    let mut term = TerminalGuard::new();
    let mut quitting = false;
    let mut last_step = Instant::now();
    loop {
        if let Some(Some(s)) = take_new(&mut inputs.snapshots) {
            app.apply(&s);
        }
        if let Some(status) = take_new(&mut inputs.status) {
            app.status = status;
        }
        // Run mode: the engine has dropped its end of the snapshots. Without a finished snapshot the run
        // failed (its error is printed once the terminal is restored): nothing more will come.
        if app.mode == Mode::Run && inputs.snapshots.is_none() && !app.finished {
            break;
        }
        if app.mode == Mode::Replay && last_step.elapsed() >= Duration::from_millis(250) {
            app.step_playback();
            last_step = Instant::now();
        }
        // Stopped from outside (SIGINT, SIGTERM): as if q had been pressed.
        if !quitting && inputs.interrupt.as_ref().is_some_and(|tx| *tx.borrow()) {
            quitting = true;
            app.status = Some("interrupted: stopping the load, writing the results…".into());
        }
        if quitting && app.finished {
            break;
        }
        term.0.draw(|f| ui::draw(f, &app))?;
        if event::poll(Duration::from_millis(200))?
            && let Event::Key(key) = event::read()?
            && key.kind == KeyEventKind::Press
            && app.on_key(key) == Command::Quit
        {
            match (&inputs.interrupt, app.finished || quitting) {
                (Some(tx), false) => {
                    tx.send_replace(true);
                    quitting = true;
                    app.status = Some("stopping the load, writing the results… (q again: leave now)".into());
                }
                // Finished, not a run, or a second q while stopping: leave (the run still writes its
                // results before the process exits).
                _ => break,
            }
        }
    }
    drop(term);
    Ok(app)
}
