//! The keys that command the trainer: pause, step, learning rate, reset, swapping a run's
//! model, experiments. Those that throw a run's progress away keep it first.

use super::{Action, App, SaveKind, SidePanel, TrainerPhase};
use crate::model::{EditError, ModelSpec};
use crate::records::events::TrainerCommand;
use crate::tui::keys::Intent;

impl App {
    /// Keys that command the trainer (live mode, trainer alive). Those that throw a run's
    /// progress away save it first.
    pub(super) fn control(&mut self, intent: Intent) -> Vec<Action> {
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
            Intent::CycleVariant => return self.replace(ModelSpec::next_variant),
            Intent::Deeper => return self.replace(ModelSpec::deeper),
            Intent::Shallower => return self.replace(ModelSpec::shallower),
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

    fn replace(&mut self, edit: fn(ModelSpec) -> Result<ModelSpec, EditError>) -> Option<Action> {
        let run = self.focus;
        let old = self.runs.get(run)?.info.spec.clone();
        // The trainer built this run from the spec, so it parses; if it somehow did not, say so.
        let edited = old
            .parse::<ModelSpec>()
            .map_err(|e| e.to_string())
            .and_then(|spec| edit(spec).map_err(|e| e.to_string()));
        let new = match edited {
            Ok(new) => new.to_string(),
            Err(why) => {
                self.set_status(why, false);
                return None;
            }
        };
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
}
