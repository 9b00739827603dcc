//! Experiments started from the dashboard on the runs' current weights: each runs on a copy of
//! every run's network, on a thread of its own, reporting progress through the trainer's event
//! channel. Training goes on (or stays paused) meanwhile; a cancelled experiment stops at its next
//! forward pass and reports nothing but that it stopped.

use super::channel::AuxSender;
use super::events::TrainerEvent;
use super::lesion::{self, LesionParams, LesionReport};
use super::trainer::Trainer;
use crate::data::Dataset;
use crate::model::Network;
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Test images a dashboard lesion study evaluates: the first 500 keep a 56-layer study of three
/// runs under a minute while resolving drops of a few percent.
pub const DASHBOARD_LESION_IMAGES: usize = 500;
/// Evaluation batch of dashboard experiments (batch norm is in evaluation mode, so the batch
/// size changes nothing but speed).
const EVAL_BATCH: usize = 100;
/// Progress events at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Which experiment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExperimentKind {
    /// Veit, Wilber, Belongie 2016, §4: test accuracy with each block deleted.
    #[default]
    Lesion,
}

impl ExperimentKind {
    pub const ALL: [ExperimentKind; 1] = [ExperimentKind::Lesion];

    pub fn name(self) -> &'static str {
        match self {
            Self::Lesion => "lesion study",
        }
    }

    /// The next kind, for the dashboard's cycling key.
    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|&k| k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }
}

/// A finished experiment, for every run in run order.
#[derive(Clone, Debug, PartialEq)]
pub enum ExperimentResult {
    Lesion {
        report: LesionReport,
        /// Classes of the dataset: chance accuracy is 1/classes.
        classes: usize,
    },
}

impl ExperimentResult {
    pub fn kind(&self) -> ExperimentKind {
        match self {
            Self::Lesion { .. } => ExperimentKind::Lesion,
        }
    }
}

/// A running experiment. Dropping it cancels it.
pub struct Job {
    pub kind: ExperimentKind,
    cancel: Arc<AtomicBool>,
}

impl Job {
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Whether it has finished, failed or stopped (its thread set the flag on the way out).
    pub fn is_over(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// Start `kind` on copies of `trainer`'s networks as they are now.
pub fn start(kind: ExperimentKind, trainer: &Trainer, tx: AuxSender) -> Job {
    let nets: Vec<(String, Network<f32>)> = trainer
        .runs
        .iter()
        .map(|r| (r.spec.to_string(), r.net.clone()))
        .collect();
    let ds = trainer.ds.clone();
    let params = LesionParams {
        experiment: trainer.cfg.clone(),
        steps: trainer.runs.iter().map(|r| r.step).collect(),
        from: None,
        test_images: DASHBOARD_LESION_IMAGES.min(ds.test.len()),
        eval_batch: EVAL_BATCH,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let (flag, failures) = (cancel.clone(), tx.clone());
    let spawned = std::thread::Builder::new()
        .name("resviz-experiment".into())
        .spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                run_lesion(nets, &ds, params, &flag, &tx)
            }));
            let was_cancelled = flag.swap(true, Ordering::Relaxed);
            tx.send(match outcome {
                Ok(Some(result)) if !was_cancelled => TrainerEvent::ExperimentFinished {
                    result: Box::new(result),
                },
                Ok(_) => TrainerEvent::ExperimentStopped { kind },
                Err(p) => TrainerEvent::ExperimentFailed {
                    kind,
                    message: panic_message(p.as_ref()),
                },
            });
        });
    if let Err(e) = spawned {
        cancel.store(true, Ordering::Relaxed);
        failures.send(TrainerEvent::ExperimentFailed {
            kind,
            message: format!("cannot start a thread: {e}"),
        });
    }
    Job { kind, cancel }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "the experiment panicked".into())
}

/// The lesion study of every network; `None` if cancelled.
fn run_lesion(
    mut nets: Vec<(String, Network<f32>)>,
    ds: &Dataset,
    params: LesionParams,
    cancel: &AtomicBool,
    tx: &AuxSender,
) -> Option<ExperimentResult> {
    let ranges = lesion::ranges(ds, params.test_images, params.eval_batch);
    let total: usize = nets.iter().map(|(_, n)| n.num_blocks() + 1).sum();
    let mut progress = Progress::new(ExperimentKind::Lesion, total, tx);
    let mut models = Vec::with_capacity(nets.len());
    for (name, net) in &mut nets {
        let m = lesion::lesion_net_until(net, name, ds, &ranges, || progress.tick(), cancel)?;
        models.push(m);
    }
    Some(ExperimentResult::Lesion {
        report: LesionReport { models, params },
        classes: ds.classes,
    })
}

/// Throttled progress events.
struct Progress<'a> {
    kind: ExperimentKind,
    done: usize,
    total: usize,
    last: Instant,
    tx: &'a AuxSender,
}

impl<'a> Progress<'a> {
    fn new(kind: ExperimentKind, total: usize, tx: &'a AuxSender) -> Self {
        tx.send(TrainerEvent::ExperimentProgress {
            kind,
            done: 0,
            total,
        });
        Self {
            kind,
            done: 0,
            total,
            last: Instant::now(),
            tx,
        }
    }

    fn tick(&mut self) {
        self.done += 1;
        if self.last.elapsed() >= PROGRESS_EVERY || self.done == self.total {
            self.last = Instant::now();
            self.tx.send(TrainerEvent::ExperimentProgress {
                kind: self.kind,
                done: self.done,
                total: self.total,
            });
        }
    }
}
