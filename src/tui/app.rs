//! All dashboard state and its transitions. `App::update` is synchronous and does no I/O: it turns
//! keys and trainer events into new state plus [`Action`]s for the terminal loop to carry out, so
//! every behaviour here is testable without a terminal.
//!
//! Control keys update the state optimistically (paused, new spec, new lr) because the trainer only
//! reads commands between steps, and a deep net's step can take longer than the 100 ms a key press
//! may take to show. The trainer's confirming event then agrees with what is already on screen.

use ratatui::crossterm::event::{KeyEvent, KeyModifiers};

use super::cursor::TimeCursor;
use super::experiments::Experiments;
use super::keys::{self, Intent};
use crate::config::ExperimentConfig;
use crate::records::events::{TrainerCommand, TrainerEvent};
use crate::records::record::{RunHistory, RunInfo};

/// Everything that can happen to the dashboard.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    Resize {
        width: u16,
        height: u16,
    },
    /// Time passes; nothing in the state depends on it today, so it never dirties.
    Tick,
    Trainer(TrainerEvent),
    /// The trainer's event channel closed: it ended (or died) without necessarily saying so.
    TrainerClosed,
}

/// Work for the terminal loop, in the order given.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Send(TrainerCommand),
    /// Save a snapshot, then report back with [`App::saved`] or [`App::save_failed`].
    Save(SaveKind),
    /// Write the screen as drawn now to a file, then report with [`App::screenshot_written`].
    Screenshot,
    Quit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveKind {
    /// The user pressed `s`.
    Manual,
    /// Quitting with unsaved progress.
    Autosave,
    /// `r`, `v`, `+` or `-` is about to throw unsaved progress away: kept first. Not the exit's
    /// autosave, so a failure here is shown but does not fail the exit.
    BeforeDiscard,
}

/// The trainer as the dashboard last knew it.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainerPhase {
    /// Waiting for `Started`.
    Starting,
    Running,
    Paused,
    Finished,
    Failed(String),
    /// The channel closed without `Finished` or `Failed`.
    Ended,
}

/// A one-line message for the footer; errors are shown in red.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub text: String,
    pub error: bool,
}

/// What the panel beside the gradient flow shows (`p` cycles).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SidePanel {
    /// He 2016 eq. 5: the shortcut's share of each block's input gradient, every run.
    #[default]
    Shortcut,
    /// Activation mean, std, sparsity and dead units of the focused run.
    Activations,
    /// Per-parameter gradient norms and update ratios of the focused run.
    Params,
    /// The gradient histogram of one block's first conv weight over the recorded steps (↑ ↓).
    Hist,
    /// The experiments on the live weights (`x` runs, `e` picks which).
    Experiment,
    /// The heatmap, in this slot only where the layout has no place of its own for it.
    Heatmap,
    /// How fast each block learns (or how far its weights grew), here only where the layout
    /// has no place of its own for it.
    Learning,
}

impl SidePanel {
    /// The next panel; `hidden`: whether the layout hides the heatmap and the learning panel,
    /// which then join the cycle.
    fn next(self, hidden: bool) -> Self {
        match self {
            Self::Shortcut if hidden => Self::Learning,
            Self::Shortcut | Self::Learning => Self::Activations,
            Self::Activations => Self::Params,
            Self::Params => Self::Hist,
            Self::Hist if hidden => Self::Heatmap,
            Self::Hist | Self::Heatmap => Self::Experiment,
            Self::Experiment => Self::Shortcut,
        }
    }
}

/// Replay playback speeds, steps a second: from a few (the first steps, where the story starts,
/// can be followed one by one) to thousands.
pub const PLAY_SPEEDS: [u32; 10] = [2, 5, 10, 30, 60, 150, 300, 600, 1500, 15000];
/// Frame ticks a second (`tui::run`'s tick is 33 ms).
pub const TICKS_PER_SEC: u32 = 30;
/// Frame ticks a status message stays on the footer: about 5 s, errors 15 s.
const STATUS_TICKS: [u32; 2] = [5 * TICKS_PER_SEC, 15 * TICKS_PER_SEC];

/// What the heatmap colours (`m` toggles).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeatMode {
    /// The size-free gradient RMS, on the experiment's log scale.
    #[default]
    Rms,
    /// The shortcut's share, 0 to 1.
    Share,
    /// ‖ΔW‖/‖W‖ of each block's convolution weights (log): when the input blocks freeze.
    Learn,
}

/// What the learning panel draws against relative depth (`w` toggles).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LearnMode {
    /// ‖ΔW‖/‖W‖ per block, averaged over recent steps: the effective learning rate.
    #[default]
    Ratio,
    /// ‖W_t‖/‖W_0‖ per block.
    Growth,
}

pub struct App {
    config: ExperimentConfig,
    dataset: String,
    runs: Vec<RunHistory>,
    focus: usize,
    state: TrainerPhase,
    /// Base learning rate: what `[`/`]` scale and the header shows.
    lr: f64,
    /// `Some` in replay mode: the moment every panel shows.
    cursor: Option<TimeCursor>,
    help: bool,
    status: Option<Status>,
    unsaved_steps: u64,
    /// The runs as they were when a key asked to discard progress, until that save is reported.
    /// (with the config that names them: a swap changes it).
    before_discard: Option<(ExperimentConfig, Vec<RunHistory>)>,
    dirty: bool,
    side: SidePanel,
    heat: HeatMode,
    learn: LearnMode,
    /// Every gradient RMS recorded in this experiment: the heatmap's fixed colour scale.
    rms_scale: crate::tui::scale::LogScale,
    experiments: Experiments,
    /// The loss chart's y axis is logarithmic (`l`).
    loss_log: bool,
    /// Replay playback: running, the index into [`PLAY_SPEEDS`], and the steps owed to the
    /// cursor in thirtieths (slow speeds move less than one step a tick).
    playing: bool,
    speed: usize,
    play_owed: u32,
    /// Frame ticks since the status message was set: it expires (`STATUS_TICKS`).
    status_age: u32,
    /// Per run, the data epoch of its first record since it (re)started: the run's own epoch
    /// is counted from there (the sampler's epoch runs on across `r` and swaps).
    epoch_base: Vec<u32>,
    /// The digits typed after `g`, while the prompt is open.
    prompt: Option<String>,
    /// The terminal's size as last reported, for what the layout hides.
    size: Option<(u16, u16)>,
    /// A test evaluation under way: `(run, test batches done, in all)`.
    evaluating: Option<(usize, usize, usize)>,
    /// Runs restarted by a key (`r`, `v`, `+`, `-`) that the trainer has not confirmed yet.
    restarting: std::collections::BTreeSet<usize>,
    /// `Some` when watching streams (`resviz watch`): no trainer to command.
    watch: Option<watch::Watch>,
    /// The readout, hidden runs, smoothing and time axis.
    view: view::View,
}

impl App {
    /// A live dashboard before the trainer's `Started` event: runs named from the config.
    pub fn new(config: ExperimentConfig) -> Self {
        let runs = config
            .models
            .iter()
            .map(|spec| {
                RunHistory::new(RunInfo {
                    spec: spec.clone(),
                    ..Default::default()
                })
            })
            .collect();
        Self {
            dataset: config.dataset.clone(),
            lr: config.lr,
            config,
            runs,
            focus: 0,
            state: TrainerPhase::Starting,
            cursor: None,
            help: false,
            status: None,
            unsaved_steps: 0,
            before_discard: None,
            dirty: true,
            side: SidePanel::default(),
            heat: HeatMode::default(),
            learn: LearnMode::default(),
            rms_scale: Default::default(),
            experiments: Experiments::default(),
            loss_log: false,
            playing: false,
            speed: 6,
            play_owed: 0,
            status_age: 0,
            epoch_base: Vec::new(),
            prompt: None,
            size: None,
            evaluating: None,
            restarting: Default::default(),
            watch: None,
            view: Default::default(),
        }
    }

    /// A saved session without a trainer; the time cursor starts at the last step.
    pub fn replay(histories: Vec<RunHistory>, config: ExperimentConfig, dataset: String) -> Self {
        let steps = || histories.iter().flat_map(|h| &h.steps).map(|r| r.step);
        let cursor = TimeCursor::new(steps().min().unwrap_or(0), steps().max().unwrap_or(0));
        let mut app = Self::new(config);
        for h in &histories {
            for r in &h.steps {
                app.rms_scale.push(r.blocks.iter().map(|b| b.grad_rms));
            }
        }
        let first_epoch = |h: &RunHistory| h.steps.first().map_or(0, |r| r.epoch);
        app.epoch_base = histories.iter().map(first_epoch).collect();
        app.runs = histories;
        app.dataset = dataset;
        app.state = TrainerPhase::Finished;
        app.cursor = Some(cursor);
        app
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Action> {
        match msg {
            // Ctrl-C always quits, prompt or not.
            Msg::Key(key)
                if self.prompt.is_some() && !key.modifiers.contains(KeyModifiers::CONTROL) =>
            {
                self.on_prompt(key)
            }
            Msg::Key(key) if self.prompt.take().is_some() => return self.on_key(key),
            Msg::Key(key) => return self.on_key(key),
            Msg::Resize { width, height } => {
                self.size = Some((width, height));
                self.dirty = true;
            }
            Msg::Tick => {
                self.expire_status();
                self.play_tick()
            }
            Msg::Trainer(event) => self.on_event(event),
            Msg::TrainerClosed => {
                self.evaluating = None;
                if self.trainer_alive() && !self.is_replay() {
                    self.state = TrainerPhase::Ended;
                    self.dirty = true;
                }
            }
        }
        Vec::new()
    }

    /// The loop saved a snapshot at `path`.
    pub fn saved(&mut self, path: &std::path::Path, kind: SaveKind) {
        self.unsaved_steps = 0;
        self.before_discard = None;
        let text = match kind {
            SaveKind::BeforeDiscard => {
                let was = self.status.take().map(|s| s.text).unwrap_or_default();
                format!("autosaved {}; {was}", path.display())
            }
            _ => format!("saved {}", path.display()),
        };
        self.set_status(text, false);
    }

    pub fn save_failed(&mut self, message: &str) {
        self.before_discard = None;
        self.set_status(format!("save failed: {message}"), true);
    }

    /// The test evaluation under way, if one is: `(run, test batches done, in all)`.
    pub fn evaluating(&self) -> Option<(usize, usize, usize)> {
        self.evaluating
    }

    /// Whether anything changed since the last call: the loop draws only then.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        use ratatui::crossterm::event::{KeyCode, KeyEventKind};
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let intent = keys::intent(key);
        if self.help {
            // Any key closes the help. `?`, Esc and keys without a binding only close it; any
            // other key goes on to do what it says, so it is not lost to the overlay.
            self.help = false;
            self.dirty = true;
            let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
            if matches!(intent, None | Some(Intent::Help)) || (key.code == KeyCode::Esc && !ctrl) {
                return Vec::new();
            }
        }
        let Some(intent) = intent else {
            return Vec::new();
        };
        if self.view_key(key.code, intent) {
            return Vec::new();
        }
        match intent {
            Intent::Help => self.help = true,
            Intent::CyclePanel => self.side = self.side.next(self.heatmap_hidden()),
            Intent::LogAxis => self.loss_log = !self.loss_log,
            // Where the layout hides the learning panel, `w` brings it first.
            Intent::Learning if self.heatmap_hidden() && self.side != SidePanel::Learning => {
                self.side = SidePanel::Learning
            }
            Intent::Learning => {
                self.learn = match self.learn {
                    LearnMode::Ratio => LearnMode::Growth,
                    LearnMode::Growth => LearnMode::Ratio,
                }
            }
            Intent::Screenshot => return vec![Action::Screenshot],
            Intent::GoTo => {
                self.prompt = Some(String::new());
                self.show_prompt();
            }
            Intent::TogglePause | Intent::Slower | Intent::Faster if self.is_replay() => {
                self.playback(intent)
            }
            Intent::Slower | Intent::Faster => {
                self.set_status("< and > set the replay's speed", false)
            }
            Intent::HeatMode => {
                self.heat = match self.heat {
                    HeatMode::Rms => HeatMode::Share,
                    HeatMode::Share => HeatMode::Learn,
                    HeatMode::Learn => HeatMode::Rms,
                }
            }
            Intent::Quit => return self.quit(),
            Intent::FocusNext => self.set_focus(self.focus + 1),
            Intent::FocusPrev => self.set_focus(self.focus + self.runs.len().max(1) - 1),
            Intent::Focus(i) if i < self.runs.len() => self.set_focus(i),
            Intent::Focus(_) => return Vec::new(),
            Intent::Back | Intent::Forward | Intent::PageBack | Intent::PageForward => {
                self.move_cursor(intent)
            }
            Intent::Start | Intent::End => self.move_cursor(intent),
            Intent::Save if self.is_replay() => self.set_status("a replay is already saved", false),
            Intent::Save => {
                self.set_status("saving…", false);
                return vec![Action::Save(SaveKind::Manual)];
            }
            // The first press opens the panel on the kind it showed last; the next ones cycle.
            Intent::NextExperiment if self.side != SidePanel::Experiment => {
                self.side = SidePanel::Experiment
            }
            Intent::NextExperiment => self.experiments.next(),
            Intent::RunExperiment if self.is_replay() => self.set_status(
                "experiments need live weights: a replay has none (run resviz to train)",
                false,
            ),
            _ if self.is_replay() => {
                self.set_status("replay: there is no trainer to control", false)
            }
            _ if self.watch.is_some() => self.refuse_while_watching(intent),
            _ if !self.trainer_alive() => self.set_status("the trainer has ended", false),
            _ => return self.control(intent),
        }
        self.dirty = true;
        Vec::new()
    }

    /// Quit as `q` does (autosave first if needed): also for the loop when input ends.
    pub fn quit(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.is_replay() && self.unsaved_steps > 0 {
            actions.push(Action::Save(SaveKind::Autosave));
        }
        if !self.is_replay() && self.trainer_alive() {
            actions.push(Action::Send(TrainerCommand::Stop));
        }
        actions.push(Action::Quit);
        actions
    }

    /// A key while the `g` prompt is open: digits, Backspace, Enter focuses, anything else
    /// closes it.
    fn on_prompt(&mut self, key: KeyEvent) {
        use ratatui::crossterm::event::KeyCode;
        let Some(typed) = self.prompt.as_mut() else {
            return;
        };
        match key.code {
            KeyCode::Char(c) if c.is_ascii_digit() && typed.len() < 6 => typed.push(c),
            KeyCode::Backspace => drop(typed.pop()),
            KeyCode::Enter => {
                let typed = self.prompt.take().unwrap_or_default();
                match typed.parse::<usize>() {
                    Ok(n @ 1..) if n <= self.runs.len() => {
                        self.set_focus(n - 1);
                        self.status = None;
                    }
                    _ => self.set_status(
                        format!("no run {typed}: runs are 1-{}", self.runs.len()),
                        false,
                    ),
                }
                self.dirty = true;
                return;
            }
            _ => {
                self.prompt = None;
                self.status = None;
                self.dirty = true;
                return;
            }
        }
        self.show_prompt();
    }

    fn show_prompt(&mut self) {
        let typed = self.prompt.clone().unwrap_or_default();
        self.set_status(
            format!("go to run: {typed}_ (1-{}, Enter, Esc)", self.runs.len()),
            false,
        );
    }

    /// Whether the layout at the last reported size leaves the heatmap out.
    fn heatmap_hidden(&self) -> bool {
        self.size
            .is_some_and(|(w, h)| !crate::tui::layout::shows_every_panel(w, h))
    }

    /// Space, `<` and `>` in a replay.
    fn playback(&mut self, intent: Intent) {
        match intent {
            Intent::Slower => self.speed = self.speed.saturating_sub(1),
            Intent::Faster => self.speed = (self.speed + 1).min(PLAY_SPEEDS.len() - 1),
            _ => {
                self.playing = !self.playing;
                if let Some(c) = self.cursor.as_mut()
                    && self.playing
                    && c.at == c.last
                {
                    c.jump(c.first);
                }
            }
        }
        let state = if self.playing {
            "▶ playing"
        } else {
            "‖ paused"
        };
        let speed = PLAY_SPEEDS[self.speed];
        self.play_owed = 0;
        self.set_status(
            format!("{state} · {speed} steps/s (< >, ← → one step)"),
            false,
        );
    }

    /// A status message leaves the footer after a while, so the key hints come back.
    fn expire_status(&mut self) {
        let Some(status) = &self.status else {
            return;
        };
        self.status_age += 1;
        if self.status_age >= STATUS_TICKS[usize::from(status.error)] {
            self.status = None;
            self.dirty = true;
        }
    }

    /// A frame tick: a playing replay moves on, and stops at the end.
    fn play_tick(&mut self) {
        if !self.playing {
            return;
        }
        let Some(c) = self.cursor.as_mut() else {
            return;
        };
        self.play_owed += PLAY_SPEEDS[self.speed];
        let steps = self.play_owed / TICKS_PER_SEC;
        self.play_owed %= TICKS_PER_SEC;
        c.shift(i64::from(steps));
        if c.at == c.last {
            self.playing = false;
            self.set_status("‖ end of the replay (space plays from the start)", false);
        }
        self.dirty = true;
    }

    /// The loop wrote a screenshot (or could not).
    pub fn screenshot_written(&mut self, result: Result<&std::path::Path, String>) {
        match result {
            Ok(path) => self.set_status(format!("screenshot {}", path.display()), false),
            Err(e) => self.set_status(format!("screenshot failed: {e}"), true),
        }
    }

    fn set_focus(&mut self, i: usize) {
        self.focus = if self.runs.is_empty() {
            0
        } else {
            i % self.runs.len()
        };
    }

    fn move_cursor(&mut self, intent: Intent) {
        let Some(c) = self.cursor.as_mut() else {
            return;
        };
        // Stepping by hand stops playback, or the next tick would carry the cursor away.
        self.playing = false;
        match intent {
            Intent::Back => c.shift(-1),
            Intent::Forward => c.shift(1),
            Intent::PageBack => c.shift(-c.page()),
            Intent::PageForward => c.shift(c.page()),
            Intent::Start => c.jump(c.first),
            _ => c.jump(c.last),
        };
    }

    fn set_status(&mut self, text: impl Into<String>, error: bool) {
        self.status = Some(Status {
            text: text.into(),
            error,
        });
        self.status_age = 0;
        self.dirty = true;
    }

    fn trainer_alive(&self) -> bool {
        matches!(
            self.state,
            TrainerPhase::Starting | TrainerPhase::Running | TrainerPhase::Paused
        )
    }
}

mod control;
mod events;
mod hist;
mod read;
mod view;
mod watch;

pub use view::{Readout, ReadoutRow, SMOOTHING};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod background_tests;

#[cfg(test)]
mod panel_tests;

#[cfg(test)]
mod control_tests;
