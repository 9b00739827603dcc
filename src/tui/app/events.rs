//! How trainer events change the dashboard state.

use super::{App, TrainerPhase};
use crate::records::events::TrainerEvent;
use crate::records::record::{RunHistory, RunStatus, StepRecord};

impl App {
    pub(super) fn on_event(&mut self, event: TrainerEvent) {
        self.dirty = true;
        if let Some(notice) = self.experiments.update(&event) {
            if let Some((text, error)) = notice {
                self.set_status(text, error);
            }
            return;
        }
        if self.is_of_a_replaced_model(&event) {
            return;
        }
        match event {
            TrainerEvent::Started {
                config,
                dataset,
                runs,
            } => {
                self.lr = config.lr;
                self.config = config;
                self.dataset = dataset;
                self.runs = runs.into_iter().map(RunHistory::new).collect();
                self.restarting.clear();
                self.set_focus(self.focus);
                if self.state == TrainerPhase::Starting {
                    self.state = TrainerPhase::Running;
                }
            }
            TrainerEvent::StepsFinished { records } => {
                self.evaluating = None;
                self.push_steps(records)
            }
            TrainerEvent::Evaluating { run, done, total } => {
                self.evaluating = Some((run, done, total))
            }
            TrainerEvent::Evaluated { run, eval } => {
                if self.evaluating.is_some_and(|(r, ..)| r == run) {
                    self.evaluating = None;
                }
                if let Some(h) = self.runs.get_mut(run) {
                    h.evals.push(eval);
                }
            }
            TrainerEvent::Paused { .. } if self.trainer_alive() => {
                self.state = TrainerPhase::Paused
            }
            TrainerEvent::Resumed { .. } if self.trainer_alive() => {
                self.state = TrainerPhase::Running
            }
            TrainerEvent::Paused { .. } | TrainerEvent::Resumed { .. } => {}
            TrainerEvent::LrChanged { lr } => self.lr = lr,
            TrainerEvent::Diverged { run, step, reason } => {
                let Some(h) = self.runs.get_mut(run) else {
                    return;
                };
                let text = format!(
                    "run {} {} diverged at step {step}: {reason}",
                    run + 1,
                    h.info.spec
                );
                h.status = RunStatus::Diverged { step, reason };
                self.set_status(text, true);
            }
            TrainerEvent::RunRestarted { run, info } => {
                self.restarting.remove(&run);
                if let Some(h) = self.runs.get_mut(run) {
                    *h = RunHistory::new(info);
                }
            }
            TrainerEvent::Finished { .. } => {
                self.evaluating = None;
                self.state = TrainerPhase::Finished;
                for h in self
                    .runs
                    .iter_mut()
                    .filter(|h| h.status == RunStatus::Running)
                {
                    h.status = RunStatus::Finished;
                }
            }
            TrainerEvent::Failed { message } => {
                self.evaluating = None;
                self.set_status(format!("trainer failed: {message}"), true);
                self.state = TrainerPhase::Failed(message);
            }
            TrainerEvent::StreamRun { run, info, dataset } => self.stream_run(run, info, dataset),
            TrainerEvent::StreamNote {
                text,
                error,
                dropped,
            } => self.stream_note(text, error, dropped),
            // Taken by `Experiments::update` above.
            TrainerEvent::ExperimentProgress { .. }
            | TrainerEvent::ExperimentFinished { .. }
            | TrainerEvent::ExperimentStopped { .. }
            | TrainerEvent::ExperimentFailed { .. } => {}
        }
    }

    /// Whether `event` is about a model a key has already replaced (the trainer reads commands
    /// between steps, so it can still report the old one): dropped, not given to the new run.
    fn is_of_a_replaced_model(&mut self, event: &TrainerEvent) -> bool {
        let stale = |run: &usize| self.restarting.contains(run);
        match event {
            TrainerEvent::Evaluating { run, .. } | TrainerEvent::Evaluated { run, .. } => {
                stale(run)
            }
            _ => false,
        }
    }

    fn push_steps(&mut self, mut records: Vec<(usize, StepRecord)>) {
        // Steps of a model a key replaced are not the new run's (see `is_of_a_replaced_model`).
        records.retain(|(run, _)| !self.restarting.contains(run));
        // One event may carry several coalesced steps of every run: count each step once.
        let mut steps: Vec<u64> = records.iter().map(|(_, r)| r.step).collect();
        steps.sort_unstable();
        steps.dedup();
        self.unsaved_steps += steps.len() as u64;
        let batch = self.config.batch as f64;
        for (run, rec) in records {
            if let Some(h) = self.runs.get_mut(run) {
                if h.steps.is_empty() {
                    if self.epoch_base.len() <= run {
                        self.epoch_base.resize(run + 1, 0);
                    }
                    self.epoch_base[run] = rec.epoch;
                }
                if rec.img_per_s > 0.0 {
                    h.wall_secs += batch / rec.img_per_s as f64;
                }
                self.rms_scale.push(rec.blocks.iter().map(|b| b.grad_rms));
                h.push(rec);
            }
        }
    }
}
