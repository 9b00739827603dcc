//! Experiments started from the dashboard on the runs' current weights: each runs on a copy of
//! every run's network, on a thread of its own, reporting progress through the trainer's event
//! channel. Training goes on (or stays paused) meanwhile; a cancelled experiment stops at its next
//! forward pass and reports nothing but that it stopped.

use super::channel::AuxSender;
use super::trainer::Trainer;
use crate::config::ExperimentConfig;
use crate::data::Dataset;
use crate::experiments::landscape::Landscape;
use crate::experiments::lesion::Lesion;
use crate::experiments::shatter::Shatter;
use crate::experiments::{Experiment, ExperimentError, each};
use crate::model::Network;
use crate::records::{
    DASHBOARD_LESION_IMAGES, ExperimentKind, ExperimentResult, LandscapeParams, LesionParams,
    LesionReport, ShatterParams, TrainerEvent,
};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Evaluation batch of dashboard experiments (batch norm is in evaluation mode, so the batch
/// size changes nothing but speed).
const EVAL_BATCH: usize = 100;
/// Progress events at most this often.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

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
    let (cfg, steps) = (
        trainer.cfg.clone(),
        trainer.runs.iter().map(|r| r.step).collect(),
    );
    let cancel = Arc::new(AtomicBool::new(false));
    let (flag, failures) = (cancel.clone(), tx.clone());
    let spawned = std::thread::Builder::new()
        .name("resviz-experiment".into())
        .spawn(move || {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                run(kind, &nets, &ds, (cfg, steps), &flag, &tx)
            }));
            let was_cancelled = flag.swap(true, Ordering::Relaxed);
            tx.send(match outcome {
                Ok(Ok(result)) if !was_cancelled => TrainerEvent::ExperimentFinished {
                    result: Box::new(result),
                },
                Ok(Err(ExperimentError::Invalid(message))) => {
                    TrainerEvent::ExperimentFailed { kind, message }
                }
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

type Outcome = Result<ExperimentResult, ExperimentError>;

/// `kind` on every network, with the dashboard's parameters: a lesion study on the first
/// [`DASHBOARD_LESION_IMAGES`] test images with the running statistics re-estimated first (as
/// headless); shattering with the headless defaults; the landscape on an 11×11 grid and a
/// 21-point slice over the first 256 training images, with the runs' own running statistics
/// (as Li et al.), without the Hessian. `cfg` and `steps` say what the runs were, for the lesion report.
fn run(
    kind: ExperimentKind,
    nets: &[(String, Network<f32>)],
    ds: &Dataset,
    (cfg, steps): (ExperimentConfig, Vec<u64>),
    cancel: &AtomicBool,
    tx: &AuxSender,
) -> Outcome {
    let nets: Vec<(&str, &Network<f32>)> = nets.iter().map(|(s, n)| (s.as_str(), n)).collect();
    let mut p = Progress::new(kind, tx);
    match kind {
        ExperimentKind::Lesion => {
            let params = LesionParams {
                test_images: DASHBOARD_LESION_IMAGES.min(ds.test.len()),
                eval_batch: EVAL_BATCH,
                experiment: cfg.clone(),
                steps: steps.clone(),
                from: None,
            };
            let bn = crate::records::default_bn(params.experiment.batch);
            let x = Lesion::new(ds, params.test_images, params.eval_batch, &bn)?;
            let models = p.over(&x, &nets, cancel)?;
            Ok(ExperimentResult::Lesion {
                report: Box::new(LesionReport { models, params }),
                classes: ds.classes,
            })
        }
        ExperimentKind::Shatter => {
            let x = Shatter::new(ds, &ShatterParams::default())?;
            Ok(ExperimentResult::Shatter(p.over(&x, &nets, cancel)?))
        }
        ExperimentKind::Landscape => {
            let params = LandscapeParams {
                images: LandscapeParams::default().images.min(ds.train.len()),
                // The dashboard does not show the Hessian (about a minute per 56-layer net).
                hessian_grid: 0,
                ..LandscapeParams::default()
            };
            let x = Landscape::new(ds, &params)?;
            Ok(ExperimentResult::Landscape(p.over(&x, &nets, cancel)?))
        }
    }
}

/// Throttled progress events.
struct Progress<'a> {
    kind: ExperimentKind,
    done: usize,
    total: usize,
    /// When the last event was sent (`None`: none yet, so the first, with the total, goes out).
    last: Option<Instant>,
    tx: &'a AuxSender,
}

impl<'a> Progress<'a> {
    fn new(kind: ExperimentKind, tx: &'a AuxSender) -> Self {
        Self {
            kind,
            done: 0,
            total: 0,
            last: None,
            tx,
        }
    }

    /// `x` on every net of `nets`, its progress sent as events.
    fn over<X: Experiment>(
        &mut self,
        x: &X,
        nets: &[(&str, &Network<f32>)],
        cancel: &AtomicBool,
    ) -> Result<Vec<X::Output>, ExperimentError> {
        each(x, nets, &mut |_, done, total| self.set(done, total), cancel)
    }

    fn set(&mut self, done: usize, total: usize) {
        (self.done, self.total) = (done, total);
        self.report();
    }

    fn report(&mut self) {
        let due = self.last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if due || self.done == self.total {
            self.last = Some(Instant::now());
            self.tx.send(TrainerEvent::ExperimentProgress {
                kind: self.kind,
                done: self.done,
                total: self.total,
            });
        }
    }
}
