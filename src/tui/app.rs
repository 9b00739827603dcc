//! All dashboard state and its transitions. `App::update` is synchronous and does no I/O: it turns
//! keys and trainer events into new state plus [`Action`]s for the terminal loop to carry out, so
//! every behaviour here is testable without a terminal.
//!
//! Control keys update the state optimistically (paused, new spec, new lr) because the trainer only
//! reads commands between steps, and a deep net's step can take longer than the 100 ms a key press
//! may take to show. The trainer's confirming event then agrees with what is already on screen.

use ratatui::crossterm::event::{KeyEvent, KeyModifiers};

use super::cursor::TimeCursor;
use super::keys::{self, Intent};
use super::spec::Spec;
use crate::config::ExperimentConfig;
use crate::model::spec::{MAX_DEPTH, MIN_DEPTH};
use crate::train::events::{TrainerCommand, TrainerEvent};
use crate::train::record::{RunHistory, RunInfo};

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
    Quit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveKind {
    /// The user pressed `s`.
    Manual,
    /// Quitting with unsaved progress.
    Autosave,
}

/// The trainer as the dashboard last knew it.
#[derive(Clone, Debug, PartialEq)]
pub enum TrainerState {
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
}

impl SidePanel {
    fn next(self) -> Self {
        match self {
            Self::Shortcut => Self::Activations,
            Self::Activations => Self::Params,
            Self::Params => Self::Shortcut,
        }
    }
}

/// What the heatmap colours (`m` toggles).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeatMode {
    /// The size-free gradient RMS, on the experiment's log scale.
    #[default]
    Rms,
    /// The shortcut's share, 0 to 1.
    Share,
}

pub struct App {
    config: ExperimentConfig,
    dataset: String,
    runs: Vec<RunHistory>,
    focus: usize,
    state: TrainerState,
    /// Base learning rate: what `[`/`]` scale and the header shows.
    lr: f64,
    /// `Some` in replay mode: the moment every panel shows.
    cursor: Option<TimeCursor>,
    help: bool,
    status: Option<Status>,
    unsaved_steps: u64,
    dirty: bool,
    side: SidePanel,
    heat: HeatMode,
    /// Every gradient RMS recorded in this experiment: the heatmap's fixed colour scale.
    rms_scale: crate::tui::scale::LogScale,
    /// A test evaluation under way: `(run, test batches done, in all)`.
    evaluating: Option<(usize, usize, usize)>,
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
            state: TrainerState::Starting,
            cursor: None,
            help: false,
            status: None,
            unsaved_steps: 0,
            dirty: true,
            side: SidePanel::default(),
            heat: HeatMode::default(),
            rms_scale: Default::default(),
            evaluating: None,
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
        app.runs = histories;
        app.dataset = dataset;
        app.state = TrainerState::Finished;
        app.cursor = Some(cursor);
        app
    }

    pub fn update(&mut self, msg: Msg) -> Vec<Action> {
        match msg {
            Msg::Key(key) => return self.on_key(key),
            Msg::Resize { .. } => self.dirty = true,
            Msg::Tick => {}
            Msg::Trainer(event) => self.on_event(event),
            Msg::TrainerClosed => {
                self.evaluating = None;
                if self.trainer_alive() && !self.is_replay() {
                    self.state = TrainerState::Ended;
                    self.dirty = true;
                }
            }
        }
        Vec::new()
    }

    /// The loop saved a snapshot at `path`.
    pub fn saved(&mut self, path: &std::path::Path) {
        self.unsaved_steps = 0;
        self.set_status(format!("saved {}", path.display()), false);
    }

    pub fn save_failed(&mut self, message: &str) {
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
        let Some(intent) = keys::intent(key) else {
            return Vec::new();
        };
        if self.help {
            // Any key closes the help; only ctrl-c goes on to act, so it always quits.
            self.help = false;
            self.dirty = true;
            if !key.modifiers.contains(KeyModifiers::CONTROL) {
                return Vec::new();
            }
        }
        match intent {
            Intent::Help => self.help = true,
            Intent::CyclePanel => self.side = self.side.next(),
            Intent::HeatMode => {
                self.heat = match self.heat {
                    HeatMode::Rms => HeatMode::Share,
                    HeatMode::Share => HeatMode::Rms,
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
            _ if self.is_replay() => {
                self.set_status("replay: there is no trainer to control", false)
            }
            _ if !self.trainer_alive() => self.set_status("the trainer has ended", false),
            _ => return self.control(intent).into_iter().collect(),
        }
        self.dirty = true;
        Vec::new()
    }

    /// Keys that command the trainer (live mode, trainer alive).
    fn control(&mut self, intent: Intent) -> Option<Action> {
        self.dirty = true;
        let command = match intent {
            Intent::TogglePause if self.state == TrainerState::Paused => {
                self.state = TrainerState::Running;
                TrainerCommand::Resume
            }
            Intent::TogglePause => {
                self.state = TrainerState::Paused;
                TrainerCommand::Pause
            }
            Intent::Step if self.state == TrainerState::Paused => TrainerCommand::Step,
            Intent::Step => {
                self.set_status("n steps only while paused (space pauses)", false);
                return None;
            }
            Intent::CycleVariant => return self.replace(|s| Some(s.next_variant())),
            Intent::Deeper => return self.replace(Spec::deeper),
            Intent::Shallower => return self.replace(Spec::shallower),
            Intent::HalveLr => return self.scale_lr(0.5),
            Intent::DoubleLr => return self.scale_lr(2.0),
            Intent::Reset => {
                self.set_status("resetting all runs", false);
                TrainerCommand::Reset
            }
            _ => return None,
        };
        Some(Action::Send(command))
    }

    fn replace(&mut self, edit: fn(Spec) -> Option<Spec>) -> Option<Action> {
        let run = self.focus;
        let old = self.runs.get(run)?.info.spec.clone();
        let Some(parsed) = Spec::parse(&old) else {
            self.set_status(
                format!("{old} is a preset: its architecture is fixed"),
                false,
            );
            return None;
        };
        let Some(new) = edit(parsed) else {
            self.set_status(
                format!("depth stays within {MIN_DEPTH}..{MAX_DEPTH}"),
                false,
            );
            return None;
        };
        let new = new.to_string();
        self.set_status(format!("run {}: {old} → {new}, restarting", run + 1), false);
        self.runs[run].info.spec = new.clone();
        Some(Action::Send(TrainerCommand::ReplaceRun { run, spec: new }))
    }

    fn scale_lr(&mut self, factor: f64) -> Option<Action> {
        let lr = self.lr * factor;
        if !(lr.is_finite() && lr > 0.0) {
            return None;
        }
        self.lr = lr;
        self.set_status(format!("learning rate → {lr}"), false);
        Some(Action::Send(TrainerCommand::SetLr(lr)))
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
        self.dirty = true;
    }

    fn trainer_alive(&self) -> bool {
        matches!(
            self.state,
            TrainerState::Starting | TrainerState::Running | TrainerState::Paused
        )
    }
}

mod events;
mod read;

#[cfg(test)]
mod tests;
