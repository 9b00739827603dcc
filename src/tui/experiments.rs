//! What the dashboard knows of the experiments run on the live weights: which one the panel
//! shows, the one running (with its progress), and the last result of each kind.

use crate::records::events::TrainerEvent;
use crate::records::{ExperimentKind, ExperimentResult};

/// An experiment the trainer is computing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Running {
    pub kind: ExperimentKind,
    pub done: usize,
    /// 0 until the first progress event.
    pub total: usize,
}

impl Running {
    /// Fraction done, 0 before the first progress event.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            (self.done as f64 / self.total as f64).clamp(0.0, 1.0)
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Experiments {
    /// The kind the panel shows and `x` starts.
    pub shown: ExperimentKind,
    pub running: Option<Running>,
    /// The last result of each kind (its parameters say at which step of each run), and why it
    /// no longer describes the live runs, once a run has restarted since.
    results: Vec<(ExperimentResult, Option<String>)>,
    /// Why the running experiment's result will be stale when it arrives: it works on copies
    /// taken before a run restarted.
    running_stale: Option<String>,
}

/// What an experiment event means for the footer: `(text, is_error)`.
pub type Notice = (String, bool);

impl Experiments {
    pub fn result(&self, kind: ExperimentKind) -> Option<&ExperimentResult> {
        self.results
            .iter()
            .find(|(r, _)| r.kind() == kind)
            .map(|(r, _)| r)
    }

    /// Why the last result of `kind` no longer describes the live runs, if it does not.
    pub fn stale(&self, kind: ExperimentKind) -> Option<&str> {
        self.results
            .iter()
            .find(|(r, _)| r.kind() == kind)
            .and_then(|(_, why)| why.as_deref())
    }

    /// A run restarted (`r`, `v`, `+`, `-`): every result so far, and the one being computed,
    /// describe weights that are gone. The first reason is kept.
    pub fn mark_stale(&mut self, why: &str) {
        for (_, stale) in &mut self.results {
            stale.get_or_insert_with(|| why.to_string());
        }
        if self.running.is_some() {
            self.running_stale.get_or_insert_with(|| why.to_string());
        }
    }

    /// The user asked for `kind`; the trainer will confirm with progress.
    pub fn start(&mut self, kind: ExperimentKind) {
        self.shown = kind;
        self.running_stale = None;
        self.running = Some(Running {
            kind,
            done: 0,
            total: 0,
        });
    }

    pub fn next(&mut self) {
        self.shown = self.shown.next();
    }

    /// Apply an experiment event; `None` for any other event.
    pub fn update(&mut self, event: &TrainerEvent) -> Option<Option<Notice>> {
        Some(match event {
            TrainerEvent::ExperimentProgress { kind, done, total } => {
                self.running = Some(Running {
                    kind: *kind,
                    done: *done,
                    total: *total,
                });
                None
            }
            TrainerEvent::ExperimentFinished { result } => {
                self.running = None;
                let kind = result.kind();
                self.results.retain(|(r, _)| r.kind() != kind);
                let stale = self.running_stale.take();
                self.results.push((result.as_ref().clone(), stale));
                Some((format!("{} finished", kind.name()), false))
            }
            TrainerEvent::ExperimentStopped { kind } => {
                self.running = None;
                Some((format!("{} stopped", kind.name()), false))
            }
            TrainerEvent::ExperimentFailed { kind, message } => {
                self.running = None;
                Some((format!("{} failed: {message}", kind.name()), true))
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{LesionParams, LesionReport};

    fn lesion() -> ExperimentResult {
        ExperimentResult::Lesion {
            report: Box::new(LesionReport {
                models: Vec::new(),
                params: LesionParams {
                    experiment: Default::default(),
                    steps: vec![3],
                    from: None,
                    test_images: 10,
                    eval_batch: 5,
                },
            }),
            classes: 10,
        }
    }

    #[test]
    fn progress_then_result_replaces_the_previous_one() {
        let mut e = Experiments::default();
        e.start(ExperimentKind::Lesion);
        assert_eq!(e.running.unwrap().fraction(), 0.0);
        let progress = TrainerEvent::ExperimentProgress {
            kind: ExperimentKind::Lesion,
            done: 3,
            total: 12,
        };
        assert_eq!(e.update(&progress), Some(None));
        assert_eq!(e.running.unwrap().fraction(), 0.25);
        let finished = TrainerEvent::ExperimentFinished {
            result: Box::new(lesion()),
        };
        let notice = e.update(&finished).unwrap().unwrap();
        assert!(!notice.1 && notice.0.contains("finished"), "{notice:?}");
        assert!(e.running.is_none());
        e.update(&finished);
        assert_eq!(e.results.len(), 1, "one result per kind");
        assert!(e.result(ExperimentKind::Lesion).is_some());
    }

    #[test]
    fn a_restart_marks_results_stale_until_the_next_run() {
        let mut e = Experiments::default();
        let finished = TrainerEvent::ExperimentFinished {
            result: Box::new(lesion()),
        };
        e.start(ExperimentKind::Lesion);
        e.update(&finished);
        assert_eq!(e.stale(ExperimentKind::Lesion), None);
        e.mark_stale("run 2 was swapped since");
        e.mark_stale("the runs were reset since");
        assert_eq!(
            e.stale(ExperimentKind::Lesion),
            Some("run 2 was swapped since")
        );
        // Started before a restart, finished after it: computed on the old weights.
        e.start(ExperimentKind::Lesion);
        e.mark_stale("the runs were reset since");
        e.update(&finished);
        assert_eq!(
            e.stale(ExperimentKind::Lesion),
            Some("the runs were reset since")
        );
        e.start(ExperimentKind::Lesion);
        e.update(&finished);
        assert_eq!(e.stale(ExperimentKind::Lesion), None);
    }

    #[test]
    fn stop_and_failure_end_the_run_and_other_events_pass() {
        let mut e = Experiments::default();
        e.start(ExperimentKind::Lesion);
        let failed = TrainerEvent::ExperimentFailed {
            kind: ExperimentKind::Lesion,
            message: "boom".into(),
        };
        assert!(e.update(&failed).unwrap().unwrap().1);
        assert!(e.running.is_none());
        assert_eq!(e.update(&TrainerEvent::Finished { step: 1 }), None);
    }
}
