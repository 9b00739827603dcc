//! The keys that command the trainer: pause, step, learning rate, reset, swapping a run's
//! model, experiments. Those that throw a run's progress away keep it first (a save of the runs
//! as they were), and a swapped run starts a history of its own.

use super::{Action, App, SaveKind, SidePanel, TrainerPhase};
use crate::model::{EditError, ModelSpec};
use crate::records::events::TrainerCommand;
use crate::records::record::{RunHistory, RunInfo};
use crate::tui::keys::Intent;

impl App {
    /// Keys that command the trainer (live mode, trainer alive). Those that throw a run's
    /// progress away save it first.
    pub(super) fn control(&mut self, intent: Intent) -> Vec<Action> {
        let discards = matches!(
            intent,
            Intent::CycleVariant | Intent::Deeper | Intent::Shallower | Intent::Reset
        );
        // The runs as they are now, before this key changes them on screen: what the save must
        // write, so each run is saved under the spec it was trained as. Several such keys before
        // the save is reported keep the first state (one save).
        let keep = (discards && self.unsaved_steps > 0 && self.before_discard.is_none())
            .then(|| (self.config.clone(), self.runs.clone()));
        let Some(command) = self.command(intent) else {
            return Vec::new();
        };
        match keep {
            Some(runs) => {
                self.before_discard = Some(runs);
                vec![Action::Save(SaveKind::BeforeDiscard), command]
            }
            None => vec![command],
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
                for run in 0..self.runs.len() {
                    let info = self.runs[run].info.clone();
                    self.restart(run, info);
                }
                self.experiments.mark_stale("the runs were reset since");
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
        // A new model is a new run: it starts a history of its own (the old one is in the
        // save this key asked for, if it had unsaved steps), and the experiment's config says
        // what the run now trains, so a later save is consistent.
        let info = RunInfo {
            spec: new.clone(),
            ..Default::default()
        };
        self.restart(run, info);
        if let Some(model) = self.config.models.get_mut(run) {
            model.clone_from(&new);
        }
        self.experiments
            .mark_stale(&format!("run {} was swapped since", run + 1));
        Some(Action::Send(TrainerCommand::ReplaceRun { run, spec: new }))
    }

    /// Run `run` starts over as `info`: its history is emptied now, and until the trainer's
    /// `RunRestarted` confirms, records of the model it had are not the new run's and are
    /// dropped (`events::on_event`).
    fn restart(&mut self, run: usize, info: RunInfo) {
        self.runs[run] = RunHistory::new(info);
        self.restarting.insert(run);
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
