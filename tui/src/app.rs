//! The dashboard's state: the windows received so far (or loaded), the latest figures, and what the
//! person looking has chosen (focused panel, time span, pause, help, replay cursor).

use std::collections::BTreeMap;
use std::time::Duration;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use stampede_loadgen::data::metrics::Figures;
use stampede_loadgen::data::threshold;
use stampede_loadgen::data::{FailureKind, Judged, Phase, Snapshot, StreamFigures, Summary, Window};
use stampede_loadgen::observe;
use stampede_loadgen::results::Results;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The run happens in this process.
    Run,
    /// Following `stampede run --live` elsewhere.
    Attach,
    /// A finished run from its results file.
    Replay,
}

/// The panels, in their order on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Rps,
    Latency,
    Failures,
    Statuses,
    Blocked,
    Cpu,
    Resources,
    Streams,
    Thresholds,
}

impl Panel {
    pub const ALL: [Panel; 9] = [
        Panel::Rps,
        Panel::Latency,
        Panel::Failures,
        Panel::Statuses,
        Panel::Blocked,
        Panel::Cpu,
        Panel::Resources,
        Panel::Streams,
        Panel::Thresholds,
    ];
}

/// Time spans the charts can show (seconds; 0 = the whole run).
const SPANS: [usize; 6] = [30, 60, 120, 300, 600, 0];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    None,
    Quit,
}

pub struct App {
    pub mode: Mode,
    pub scenario: String,
    pub target: String,
    pub slots: Vec<String>,
    pub windows: Vec<Window>,
    pub phase: Phase,
    pub elapsed_s: f64,
    pub remaining_s: f64,
    pub totals: Summary,
    /// Per recording slot, in the order of `slots`.
    pub slot_totals: Vec<Summary>,
    pub sse: StreamFigures,
    pub mcp: StreamFigures,
    pub statuses: BTreeMap<u16, u64>,
    pub failures: BTreeMap<FailureKind, u64>,
    pub thresholds: BTreeMap<String, Vec<String>>,
    /// The scenario's settle time, in seconds.
    pub settle_s: f64,
    pub finished: bool,
    /// Replay: index of the window the view ends at.
    pub cursor: Option<usize>,
    pub playing: bool,
    span: usize,
    /// Paused: the view ends where it was when paused.
    paused_at: Option<usize>,
    pub focus: Option<Panel>,
    pub help: bool,
    /// A line for the person: "the run has ended", "stopping the load…".
    pub status: Option<String>,
    pub color: bool,
}

impl App {
    pub fn new(mode: Mode) -> App {
        App {
            mode,
            scenario: String::new(),
            target: String::new(),
            slots: Vec::new(),
            windows: Vec::new(),
            phase: Phase::RampUp,
            elapsed_s: 0.0,
            remaining_s: 0.0,
            totals: Summary::default(),
            slot_totals: Vec::new(),
            sse: StreamFigures::default(),
            mcp: StreamFigures::default(),
            statuses: BTreeMap::new(),
            failures: BTreeMap::new(),
            thresholds: BTreeMap::new(),
            settle_s: 5.0,
            finished: false,
            cursor: None,
            playing: false,
            span: 1,
            paused_at: None,
            focus: None,
            help: false,
            status: None,
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    /// Take in a live snapshot: its window joins the history.
    pub fn apply(&mut self, s: &Snapshot) {
        self.scenario = s.scenario.clone();
        self.target = s.target.clone();
        self.slots = s.slots.clone();
        self.phase = s.phase;
        self.elapsed_s = s.elapsed_s;
        self.remaining_s = s.remaining_s;
        self.totals = s.totals_all.clone();
        self.slot_totals = s.totals.clone();
        self.sse = s.sse.clone();
        self.mcp = s.mcp.clone();
        self.statuses = s.statuses.clone();
        self.failures = s.failures.clone();
        self.thresholds = s.thresholds.clone();
        self.settle_s = s.settle_s;
        self.finished = s.finished;
        if let Some(w) = &s.window
            && self.windows.last().is_none_or(|last| last.t < w.t)
        {
            self.windows.push(w.clone());
        }
    }

    /// A finished run, for replay; the cursor starts at the end.
    pub fn from_results(r: &Results) -> App {
        let mut app = App::new(Mode::Replay);
        app.scenario = r.scenario.name.clone();
        app.target = r.target.url.clone();
        app.slots = r.slots.clone();
        app.windows = r.series.clone();
        app.totals = r.totals.clone();
        app.slot_totals = r.actions.iter().map(|a| a.summary.clone()).collect();
        app.sse = r.sse.clone();
        app.mcp = r.mcp.clone();
        for a in &r.actions {
            for (s, n) in &a.statuses {
                *app.statuses.entry(*s).or_default() += n;
            }
            for (k, n) in &a.failures {
                *app.failures.entry(*k).or_default() += n;
            }
        }
        app.thresholds = r.scenario.spec.thresholds.clone();
        app.settle_s = r.observed.settle_s;
        app.finished = true;
        app.cursor = app.windows.len().checked_sub(1);
        app.sync_cursor();
        app
    }

    /// The run is over and the view is at its end: figures of the whole run apply.
    pub fn at_the_end(&self) -> bool {
        self.finished && self.paused_at.is_none() && self.cursor.is_none_or(|c| c + 1 >= self.windows.len())
    }

    /// Whether anything of a run has arrived (a snapshot, or a results file).
    pub fn has_run(&self) -> bool {
        !self.scenario.is_empty()
    }

    /// The windows the view shows: up to the cursor (replay) or the pause, the last `span` seconds.
    pub fn visible(&self) -> &[Window] {
        let end = match (self.cursor, self.paused_at) {
            (Some(c), _) => c + 1,
            (None, Some(p)) => p,
            (None, None) => self.windows.len(),
        }
        .min(self.windows.len());
        let span = SPANS[self.span];
        let start = if span == 0 { 0 } else { end.saturating_sub(span) };
        &self.windows[start..end]
    }

    /// The thresholds judged against what the view shows now (up to the cursor or pause), from the
    /// same figures a finished run's results give, with the scenario's settle time.
    pub fn judge_thresholds(&self) -> Result<Vec<Judged>, Vec<threshold::ThresholdError>> {
        let thresholds = threshold::parse_all(&self.thresholds)?;
        let end = self
            .cursor
            .map_or(self.windows.len(), |c| c + 1)
            .min(self.windows.len());
        let windows = &self.windows[..end];
        let load_end = windows
            .iter()
            .find(|w| w.phase == Phase::PostLoad)
            .or(windows.last())
            .map_or(0.0, |w| w.t.saturating_sub(1) as f64);
        let observed: Vec<_> = windows
            .iter()
            .map(|w| (w.t, w.phase == Phase::PostLoad, &w.observed))
            .collect();
        let observed = observe::summarize(
            None,
            &observed,
            load_end,
            Duration::from_secs_f64(self.settle_s),
            Default::default(),
        );
        let scopes = Figures {
            actions: self
                .slots
                .iter()
                .zip(&self.slot_totals)
                .map(|(name, s)| (name.as_str(), s, None))
                .collect(),
            totals: &self.totals,
            failures: &self.failures,
            observed: &observed,
            // Not in the live feed: the figure stays not measured.
            generator_cpu_s: None,
            mcp_sessions: (self.mcp.opened > 0).then_some((self.mcp.opened, self.mcp.peak_open)),
            load_seconds: load_end,
        }
        .by_scope();
        Ok(threshold::judge(&thresholds, &scopes, None))
    }

    pub fn span_label(&self) -> String {
        match SPANS[self.span] {
            0 => "whole run".into(),
            s if s >= 60 => format!("{} min", s / 60),
            s => format!("{s} s"),
        }
    }

    pub fn paused(&self) -> bool {
        self.paused_at.is_some()
    }

    /// Replay: header figures follow the cursor.
    fn sync_cursor(&mut self) {
        if let Some(c) = self.cursor
            && let Some(w) = self.windows.get(c)
        {
            self.phase = w.phase;
            self.elapsed_s = w.t as f64;
            let end = self.windows.last().map_or(0, |l| l.t) as f64;
            self.remaining_s = (end - w.t as f64).max(0.0);
        }
    }

    fn move_cursor(&mut self, by: isize) {
        if let Some(c) = self.cursor {
            let max = self.windows.len().saturating_sub(1) as isize;
            self.cursor = Some((c as isize + by).clamp(0, max) as usize);
            self.sync_cursor();
        }
    }

    /// Replay playback: one window forward; stops at the end.
    pub fn step_playback(&mut self) {
        if self.playing {
            self.move_cursor(1);
            if self.cursor == self.windows.len().checked_sub(1) {
                self.playing = false;
            }
        }
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Command {
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            return Command::Quit;
        }
        if self.help {
            self.help = false;
            return Command::None;
        }
        match key.code {
            KeyCode::Char('q') => return Command::Quit,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Tab => {
                self.focus = match self.focus {
                    None => Some(Panel::ALL[0]),
                    Some(p) => {
                        let i = Panel::ALL.iter().position(|x| *x == p).unwrap_or(0);
                        Panel::ALL.get(i + 1).copied()
                    }
                }
            }
            KeyCode::BackTab | KeyCode::Esc => self.focus = None,
            KeyCode::Char('+') | KeyCode::Char('=') => self.span = self.span.saturating_sub(1),
            KeyCode::Char('-') => self.span = (self.span + 1).min(SPANS.len() - 1),
            KeyCode::Char('p') if self.mode != Mode::Replay => {
                self.paused_at = match self.paused_at {
                    Some(_) => None,
                    None => Some(self.windows.len()),
                }
            }
            KeyCode::Char(' ') | KeyCode::Char('p') if self.mode == Mode::Replay => {
                if self.cursor == self.windows.len().checked_sub(1) {
                    self.cursor = Some(0);
                    self.sync_cursor();
                }
                self.playing = !self.playing;
            }
            KeyCode::Left => self.move_cursor(-1),
            KeyCode::Right => self.move_cursor(1),
            KeyCode::PageUp => self.move_cursor(-10),
            KeyCode::PageDown => self.move_cursor(10),
            KeyCode::Home => self.move_cursor(isize::MIN / 2),
            KeyCode::End => self.move_cursor(isize::MAX / 2),
            _ => {}
        }
        Command::None
    }
}
