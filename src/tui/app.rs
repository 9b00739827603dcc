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
use super::spec::Spec;
use crate::config::ExperimentConfig;
use crate::model::spec::{MAX_DEPTH, MIN_DEPTH};
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
    /// The experiments on the live weights (`x` runs, `e` picks which).
    Experiment,
    /// The heatmap, in this slot only where the layout has no place of its own for it.
    Heatmap,
}

impl SidePanel {
    /// The next panel; `heatmap`: whether the heatmap is hidden and so joins the cycle.
    fn next(self, heatmap: bool) -> Self {
        match self {
            Self::Shortcut => Self::Activations,
            Self::Activations => Self::Params,
            Self::Params if heatmap => Self::Heatmap,
            Self::Params | Self::Heatmap => Self::Experiment,
            Self::Experiment => Self::Shortcut,
        }
    }
}

/// Replay playback speeds, steps per frame tick (about 30 ticks a second).
pub const PLAY_SPEEDS: [u64; 8] = [1, 2, 5, 10, 20, 50, 100, 500];

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
    state: TrainerPhase,
    /// Base learning rate: what `[`/`]` scale and the header shows.
    lr: f64,
    /// `Some` in replay mode: the moment every panel shows.
    cursor: Option<TimeCursor>,
    help: bool,
    status: Option<Status>,
    unsaved_steps: u64,
    /// The runs as they were when a key asked to discard progress, until that save is reported.
    before_discard: Option<Vec<RunHistory>>,
    dirty: bool,
    side: SidePanel,
    heat: HeatMode,
    /// Every gradient RMS recorded in this experiment: the heatmap's fixed colour scale.
    rms_scale: crate::tui::scale::LogScale,
    experiments: Experiments,
    /// The loss chart's y axis is logarithmic (`l`).
    loss_log: bool,
    /// Replay playback: running, and the index into [`PLAY_SPEEDS`].
    playing: bool,
    speed: usize,
    /// The digits typed after `g`, while the prompt is open.
    prompt: Option<String>,
    /// The terminal's size as last reported, for what the layout hides.
    size: Option<(u16, u16)>,
    /// A test evaluation under way: `(run, test batches done, in all)`.
    evaluating: Option<(usize, usize, usize)>,
    /// `Some` when watching streams (`resviz watch`): no trainer to command.
    watch: Option<watch::Watch>,
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
            rms_scale: Default::default(),
            experiments: Experiments::default(),
            loss_log: false,
            playing: false,
            speed: 3,
            prompt: None,
            size: None,
            evaluating: None,
            watch: None,
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
            Msg::Tick => self.play_tick(),
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
            Intent::CyclePanel => self.side = self.side.next(self.heatmap_hidden()),
            Intent::LogAxis => self.loss_log = !self.loss_log,
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

    /// Keys that command the trainer (live mode, trainer alive). Those that throw a run's
    /// progress away save it first.
    fn control(&mut self, intent: Intent) -> Vec<Action> {
        let discards = matches!(
            intent,
            Intent::CycleVariant | Intent::Deeper | Intent::Shallower | Intent::Reset
        );
        let keep = discards && self.unsaved_steps > 0;
        let Some(command) = self.command(intent) else {
            return Vec::new();
        };
        // The runs as they are now: what the save must write, whatever this key changes on screen.
        // Several such keys before the save is reported keep the first state (one save).
        match keep && self.before_discard.is_none() {
            true => {
                self.before_discard = Some(self.runs.clone());
                vec![Action::Save(SaveKind::BeforeDiscard), command]
            }
            false => vec![command],
        }
    }

    /// The trainer command of a control key.
    fn command(&mut self, intent: Intent) -> Option<Action> {
        self.dirty = true;
        let command = match intent {
            Intent::TogglePause if self.state == TrainerPhase::Paused => {
                self.state = TrainerPhase::Running;
                TrainerCommand::Resume
            }
            Intent::TogglePause => {
                self.state = TrainerPhase::Paused;
                TrainerCommand::Pause
            }
            Intent::Step if self.state == TrainerPhase::Paused => TrainerCommand::Step,
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
            Intent::RunExperiment => return Some(self.run_experiment()),
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

    /// `x`: start the shown experiment, or stop the running one.
    fn run_experiment(&mut self) -> Action {
        self.side = SidePanel::Experiment;
        if let Some(r) = self.experiments.running {
            self.set_status(format!("stopping the {}…", r.kind.name()), false);
            return Action::Send(TrainerCommand::CancelExperiment);
        }
        let kind = self.experiments.shown;
        self.experiments.start(kind);
        self.set_status(
            format!(
                "{} started on the current weights (x stops it)",
                kind.name()
            ),
            false,
        );
        Action::Send(TrainerCommand::RunExperiment(kind))
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
        self.set_status(format!("{state} · {speed} steps a frame (< >)"), false);
    }

    /// A frame tick: a playing replay moves on, and stops at the end.
    fn play_tick(&mut self) {
        if !self.playing {
            return;
        }
        let Some(c) = self.cursor.as_mut() else {
            return;
        };
        c.shift(PLAY_SPEEDS[self.speed] as i64);
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
            TrainerPhase::Starting | TrainerPhase::Running | TrainerPhase::Paused
        )
    }
}

mod events;
mod read;
mod watch;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod background_tests;
