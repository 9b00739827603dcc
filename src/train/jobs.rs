//! Experiments started from the dashboard on the runs' current weights: each runs on a copy of
//! every run's network, on a thread of its own, reporting progress through the trainer's event
//! channel. Training goes on (or stays paused) meanwhile; a cancelled experiment stops at its next
//! forward pass and reports nothing but that it stopped.

use super::channel::AuxSender;
use super::trainer::Trainer;
use crate::data::Dataset;
use crate::experiments::{ExperimentError, landscape, lesion, shatter};
use crate::model::Network;
use crate::records::{
    AccuracyCheck, DASHBOARD_LESION_IMAGES, ExperimentKind, ExperimentResult, LandscapeParams,
    LesionParams, LesionReport, LesionStudy, ModelLesion, PreciseBn, ShatterParams, TrainerEvent,
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
            let outcome = catch_unwind(AssertUnwindSafe(|| match kind {
                ExperimentKind::Lesion => run_lesion(nets, &ds, params, &flag, &tx),
                ExperimentKind::Shatter => run_shatter(&nets, &ds, &flag, &tx),
                ExperimentKind::Landscape => run_landscape(&nets, &ds, &flag, &tx),
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

/// The lesion study of every network.
fn run_lesion(
    mut nets: Vec<(String, Network<f32>)>,
    ds: &Dataset,
    params: LesionParams,
    cancel: &AtomicBool,
    tx: &AuxSender,
) -> Outcome {
    let ranges = lesion::ranges(ds, params.test_images, params.eval_batch);
    // As headless: the running statistics re-estimated on training batches first.
    let bn = crate::records::default_bn(params.experiment.batch).gather(ds);
    let total: usize = nets.iter().map(|(_, n)| n.num_blocks() + 1).sum();
    let mut progress = Progress::new(ExperimentKind::Lesion, total, tx);
    let mut models = Vec::with_capacity(nets.len());
    for (name, net) in &mut nets {
        let m = lesion::lesion_net_until(net, name, ds, (&ranges, &bn), || progress.tick(), cancel)
            .ok_or(ExperimentError::Cancelled)?;
        models.push(m);
    }
    Ok(ExperimentResult::Lesion {
        report: Box::new(LesionReport { models, params }),
        classes: ds.classes,
    })
}

/// Gradient shattering of every network with the headless defaults (256 points between the
/// first two test images, batch norm re-estimated from 8 training batches).
fn run_shatter(
    nets: &[(String, Network<f32>)],
    ds: &Dataset,
    cancel: &AtomicBool,
    tx: &AuxSender,
) -> Outcome {
    let params = ShatterParams::default();
    let mut progress = Progress::new(ExperimentKind::Shatter, 0, tx);
    let mut results = Vec::with_capacity(nets.len());
    for (i, (_, net)) in nets.iter().enumerate() {
        let mut each = |d, t| progress.set(i, nets.len(), d, t);
        results.push(shatter::shatter(net, ds, &params, &mut each, cancel)?);
    }
    Ok(ExperimentResult::Shatter(results))
}

/// The loss landscape of every network on an 11×11 grid and a 21-point slice, over the first
/// 256 training images, batch norm with the run's own running statistics (as Li et al.).
fn run_landscape(
    nets: &[(String, Network<f32>)],
    ds: &Dataset,
    cancel: &AtomicBool,
    tx: &AuxSender,
) -> Outcome {
    let params = LandscapeParams {
        images: LandscapeParams::default().images.min(ds.train.len()),
        ..LandscapeParams::default()
    };
    let mut progress = Progress::new(ExperimentKind::Landscape, 0, tx);
    let mut results = Vec::with_capacity(nets.len());
    for (i, (_, net)) in nets.iter().enumerate() {
        let mut each = |d, t| progress.set(i, nets.len(), d, t);
        results.push(landscape::landscape(net, ds, &params, &mut each, cancel)?);
    }
    Ok(ExperimentResult::Landscape(results))
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

    /// Net `i` of `nets` has done `done` of its `total` passes (every net makes as many).
    fn set(&mut self, i: usize, nets: usize, done: usize, total: usize) {
        self.total = total * nets;
        self.done = i * total + done;
        self.report();
    }

    fn tick(&mut self) {
        self.done += 1;
        self.report();
    }

    fn report(&mut self) {
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

/// Evaluations [`lesion_trainer`] makes: per run, intact plus one per block.
pub fn lesion_evaluations(trainer: &Trainer) -> u64 {
    trainer
        .runs
        .iter()
        .map(|r| r.net.num_blocks() as u64 + 1)
        .sum()
}

/// Lesion every run of `trainer` on the test images `params` names, each on a copy whose
/// running statistics were re-estimated by `bn`; `train_acc` holds each run's training accuracy
/// if known; `on_eval` is called after each evaluation (for progress).
pub fn lesion_trainer(
    trainer: &mut Trainer,
    params: LesionParams,
    bn: PreciseBn,
    train_acc: &[Option<f64>],
    mut on_eval: impl FnMut(),
) -> LesionStudy {
    let ranges = lesion::ranges(&trainer.ds, params.test_images, params.eval_batch);
    let bn_batches = bn.gather(&trainer.ds);
    let models: Vec<ModelLesion> = trainer
        .runs
        .iter_mut()
        .map(|run| {
            let name = run.spec.to_string();
            lesion::lesion_net(
                &run.net,
                &name,
                &trainer.ds,
                &ranges,
                &bn_batches,
                &mut on_eval,
            )
        })
        .collect();
    let checks = models
        .iter()
        .enumerate()
        .map(|(i, m)| AccuracyCheck::new(m, train_acc.get(i).copied().flatten()))
        .collect();
    LesionStudy {
        report: LesionReport { models, params },
        bn,
        drop_convention: "intact - lesioned".into(),
        checks,
    }
}
