//! `Trainer`: N runs (one per model spec) fed the identical batch each step, stepped in turn.

use super::optim::Optimizer;
use super::schedule::lr_at;
use crate::config::ExperimentConfig;
use crate::data::{Dataset, Sampler, test_batches};
use crate::engine;
use crate::model::{ModelSpec, NetOptions, Network, PassStats, SpecError};
use crate::records::learning;
use crate::records::record::{BlockStat, Eq5, EvalRecord, RunInfo, RunStatus, StepRecord};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("run {0} does not exist")]
    NoSuchRun(usize),
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error(transparent)]
    TooBig(#[from] super::budget::TooBig),
}

/// One model being trained.
pub struct Run {
    pub spec: ModelSpec,
    pub net: Network<f32>,
    pub opt: Optimizer,
    pub status: RunStatus,
    /// Steps this run has taken since it (re)started.
    pub step: u64,
    pub wall_secs: f64,
    /// ‖w‖ of each parameter at initialisation (for a resumed run, as its record says).
    pub init_weight_norms: Vec<f32>,
    /// Per block boundary, the parameters its update ratio and weight norm are over.
    conv_groups: Vec<Vec<usize>>,
}

pub struct Trainer {
    pub cfg: ExperimentConfig,
    pub ds: Arc<Dataset>,
    pub runs: Vec<Run>,
    sampler: Sampler,
    /// The base learning rate, which the user may change while training.
    pub base_lr: f64,
    /// Batches drawn so far (the same batch goes to every run).
    pub batches: u64,
    pub epoch: u32,
    /// Reused batch buffers.
    x: Vec<f32>,
    y: Vec<usize>,
    /// Seed of the next weights drawn by a reset or swap, so restarts get fresh weights.
    restarts: u64,
}

/// Where a trainer stands, besides weights and optimizer buffers: with those, enough for a
/// restored trainer to draw the same batches and learning rates as one that never stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerState {
    pub batches: u64,
    pub epoch: u32,
    /// The sampler's `(epoch, images already served in it)`.
    pub sampler: (u32, usize),
    /// Size of the training split the sampler walks.
    pub train_len: usize,
    pub base_lr: f64,
    pub restarts: u64,
    /// Per run: its model spec and the steps it has taken.
    pub runs: Vec<(String, u64)>,
}

/// The shape of one input image of `ds`, for [`super::budget`].
pub fn input_of(ds: &Dataset) -> super::budget::Input {
    super::budget::Input {
        channels: ds.channels,
        height: ds.height,
        width: ds.width,
    }
}

pub fn net_options(ds: &Dataset, cfg: &ExperimentConfig) -> NetOptions {
    NetOptions {
        in_channels: ds.channels,
        height: ds.height,
        width: ds.width,
        classes: ds.classes,
        base_width: cfg.width,
    }
}

impl Trainer {
    pub fn new(cfg: ExperimentConfig, ds: Arc<Dataset>) -> Result<Self, TrainError> {
        let specs = cfg
            .models
            .iter()
            .map(|m| m.parse())
            .collect::<Result<Vec<ModelSpec>, _>>()?;
        super::budget::check(&specs, cfg.width, cfg.batch, input_of(&ds))?;
        let sampler = Sampler::new(ds.train.len(), cfg.seed);
        let mut t = Trainer {
            base_lr: cfg.lr,
            runs: Vec::new(),
            sampler,
            batches: 0,
            epoch: 0,
            x: Vec::new(),
            y: Vec::new(),
            restarts: 0,
            cfg,
            ds,
        };
        t.runs = specs
            .into_iter()
            .map(|s| t.fresh_run(s, t.cfg.seed))
            .collect();
        Ok(t)
    }

    fn fresh_run(&self, spec: ModelSpec, seed: u64) -> Run {
        let net = Network::new(spec, net_options(&self.ds, &self.cfg), seed);
        let init_weight_norms = (net.store.params.iter())
            .map(|p| engine::sum_squares(p.data()).sqrt() as f32)
            .collect();
        let conv_groups = learning::conv_weights(net.block_names(), &net.store.names());
        Run {
            spec,
            net,
            opt: Optimizer::new(self.cfg.optimizer, self.cfg.momentum, self.cfg.weight_decay),
            status: RunStatus::Running,
            step: 0,
            wall_secs: 0.0,
            init_weight_norms,
            conv_groups,
        }
    }

    pub fn run_info(&self, i: usize) -> RunInfo {
        let r = &self.runs[i];
        RunInfo {
            spec: r.spec.to_string(),
            block_names: r.net.block_names().to_vec(),
            param_names: r.net.store.names(),
            num_params: r.net.num_params(),
            init_weight_norms: r.init_weight_norms.clone(),
        }
    }

    pub fn run_infos(&self) -> Vec<RunInfo> {
        (0..self.runs.len()).map(|i| self.run_info(i)).collect()
    }

    /// Fresh weights for every run (a new draw, not the initial one).
    pub fn reset(&mut self) {
        self.restarts += 1;
        let seed = self.cfg.seed.wrapping_add(self.restarts);
        self.runs = self
            .runs
            .iter()
            .map(|r| self.fresh_run(r.spec, seed))
            .collect();
    }

    /// Swap run `i`'s model; it restarts from fresh weights, the others continue.
    pub fn replace_run(&mut self, i: usize, spec: &str) -> Result<RunInfo, TrainError> {
        let spec: ModelSpec = spec.parse()?;
        if i >= self.runs.len() {
            return Err(TrainError::NoSuchRun(i));
        }
        self.restarts += 1;
        self.runs[i] = self.fresh_run(spec, self.cfg.seed.wrapping_add(self.restarts));
        Ok(self.run_info(i))
    }

    pub fn lr_for(&self, run: &Run) -> f64 {
        lr_at(&self.cfg, self.base_lr, run.step + 1)
    }

    /// Draw one batch and take one optimizer step on every running run, handing each run's
    /// record to `on_run` as soon as that run has stepped (with the divergence reason if it
    /// diverged), so a viewer sees every run move instead of waiting for the slowest.
    pub fn step_each(&mut self, mut on_run: impl FnMut(usize, StepRecord, Option<String>)) {
        self.epoch = self.sampler.next_batch(
            &self.ds,
            self.cfg.batch,
            self.cfg.augment,
            &mut self.x,
            &mut self.y,
        );
        self.batches += 1;
        for i in 0..self.runs.len() {
            if self.runs[i].status != RunStatus::Running {
                continue;
            }
            let lr = self.lr_for(&self.runs[i]);
            let (rec, diverged) = self.step_run(i, lr);
            on_run(i, rec, diverged);
        }
    }

    /// One optimizer step of run `i` on the current batch.
    fn step_run(&mut self, i: usize, lr: f64) -> (StepRecord, Option<String>) {
        let (x, y) = (self.x.clone(), &self.y);
        let run = &mut self.runs[i];
        let t0 = Instant::now();
        let (stats, diverged, updates, grad_hists) = engine::on_pool(|| {
            let (stats, mut grads) = run.net.train_pass(x, y); // x: [B, C, H, W]
            let hists = super::grad_hist::per_block(&run.net.store, &mut grads, &run.conv_groups);
            let diverged = divergence(stats.loss, &stats.param_grad_norms);
            let updates = if diverged.is_none() {
                run.opt.step(&mut run.net.store, &mut grads, lr)
            } else {
                Vec::new()
            };
            (stats, diverged, updates, hists)
        });
        run.step += 1;
        if let Some(reason) = &diverged {
            run.status = RunStatus::Diverged {
                step: run.step,
                reason: reason.clone(),
            };
        }
        let secs = t0.elapsed().as_secs_f64();
        run.wall_secs += secs;
        let update_ratios: Vec<f32> = updates.iter().map(|u| u.ratio as f32).collect();
        let weight_norms: Vec<f32> = updates.iter().map(|u| u.norm as f32).collect();
        let mut blocks = block_stats(&stats, run.net.block_sizes());
        let learned = learning::block_learning(&run.conv_groups, &update_ratios, &weight_norms);
        for (b, (ratio, norm)) in blocks.iter_mut().zip(learned) {
            (b.update_ratio, b.weight_norm) = (ratio, norm);
        }
        let rec = StepRecord {
            step: run.step,
            epoch: self.epoch,
            loss: stats.loss as f32,
            acc: stats.correct as f32 / stats.batch.max(1) as f32,
            lr: lr as f32,
            img_per_s: (stats.batch as f64 / secs.max(1e-9)) as f32,
            blocks,
            param_grad_norms: stats.param_grad_norms.iter().map(|&g| g as f32).collect(),
            update_ratios,
            weight_norms,
            grad_hists,
        };
        (rec, diverged)
    }

    /// Test-split loss and accuracy of every run that is still healthy (BN in evaluation mode),
    /// handing each run's result over as soon as it is known.
    pub fn evaluate_each(&mut self, mut on_run: impl FnMut(usize, EvalRecord)) {
        let mut ev = self.start_evaluation();
        while ev.position().is_some() {
            if let Some((run, eval)) = self.evaluate_batch(&mut ev) {
                on_run(run, eval);
            }
        }
    }

    /// An evaluation of every run that is still healthy, to be advanced one test batch at a
    /// time with [`evaluate_batch`](Self::evaluate_batch), so a caller can stop in between.
    pub fn start_evaluation(&self) -> Evaluation {
        let runs = (0..self.runs.len())
            .filter(|&i| !matches!(self.runs[i].status, RunStatus::Diverged { .. }))
            .collect();
        Evaluation {
            ranges: test_batches(&self.ds, EVAL_BATCH).collect(),
            runs,
            run: 0,
            batch: 0,
            sums: (0.0, 0, 0),
        }
    }

    /// One test batch of `ev` on the forward-only path; the run's result once its last batch is
    /// done. Does nothing once `ev` is complete.
    pub fn evaluate_batch(&mut self, ev: &mut Evaluation) -> Option<(usize, EvalRecord)> {
        let i = *ev.runs.get(ev.run)?;
        if let Some(r) = ev.ranges.get(ev.batch) {
            self.ds
                .gather_range(&self.ds.test, r.clone(), &mut self.x, &mut self.y);
            let (x, y, net) = (&self.x, &self.y, &self.runs[i].net); // x: [B, C, H, W]
            let (l, c) = engine::on_pool(|| net.eval_batch(x, y));
            ev.sums.0 += l * y.len() as f64;
            ev.sums.1 += c;
            ev.sums.2 += y.len();
            ev.batch += 1;
        }
        if ev.batch < ev.ranges.len() {
            return None;
        }
        let (loss, correct, n) = std::mem::take(&mut ev.sums);
        (ev.run, ev.batch) = (ev.run + 1, 0);
        let eval = EvalRecord {
            step: self.runs[i].step,
            loss: (loss / n.max(1) as f64) as f32,
            acc: correct as f32 / n.max(1) as f32,
        };
        Some((i, eval))
    }

    /// The trainer's position, for [`restore`](Self::restore).
    pub fn state(&self) -> TrainerState {
        TrainerState {
            batches: self.batches,
            epoch: self.epoch,
            sampler: self.sampler.position(),
            train_len: self.ds.train.len(),
            base_lr: self.base_lr,
            restarts: self.restarts,
            runs: self
                .runs
                .iter()
                .map(|r| (r.spec.to_string(), r.step))
                .collect(),
        }
    }

    /// Continue from `state`: sampler, counters and base rate as saved, runs rebuilt from their
    /// specs with their step counts. Their weights and optimizer state are fresh: load the saved
    /// ones into them next.
    pub fn restore(&mut self, state: &TrainerState) -> Result<(), TrainError> {
        let len = self.ds.train.len();
        if state.train_len != len {
            return Err(TrainError::Resume(format!(
                "the run trained on {} images but the dataset now has {len}",
                state.train_len
            )));
        }
        let specs = state
            .runs
            .iter()
            .map(|(s, _)| s.parse())
            .collect::<Result<Vec<ModelSpec>, _>>()?;
        let (epoch, pos) = state.sampler;
        self.sampler = Sampler::resume(len, self.cfg.seed, epoch, pos);
        (self.batches, self.epoch) = (state.batches, state.epoch);
        (self.base_lr, self.restarts) = (state.base_lr, state.restarts);
        self.runs = specs
            .into_iter()
            .zip(&state.runs)
            .map(|(spec, &(_, step))| {
                let mut run = self.fresh_run(spec, self.cfg.seed);
                // One training pass per step: the dropout masks continue where they stopped.
                run.net.set_train_passes(step);
                Run { step, ..run }
            })
            .collect();
        Ok(())
    }

    pub fn all_stopped(&self) -> bool {
        self.runs.iter().all(|r| r.status != RunStatus::Running)
    }
}

/// Test images per forward-only pass of an evaluation: large enough to keep both cores busy on
/// a few images each, small enough that a stop between batches is never long in coming.
pub const EVAL_BATCH: usize = 64;

/// An evaluation under way (see [`Trainer::start_evaluation`]).
#[derive(Clone, Debug)]
pub struct Evaluation {
    ranges: Vec<std::ops::Range<usize>>,
    /// The runs to evaluate, in order, and the position in them.
    runs: Vec<usize>,
    run: usize,
    batch: usize,
    /// The current run's summed loss, correct predictions and images so far.
    sums: (f64, usize, usize),
}

impl Evaluation {
    /// `(run, test batches done, test batches in all)` of the batch to do next; `None` once
    /// every run is evaluated.
    pub fn position(&self) -> Option<(usize, usize, usize)> {
        let run = *self.runs.get(self.run)?;
        Some((run, self.batch, self.ranges.len()))
    }
}

/// Why a step's numbers mean the run has diverged, if they do.
fn divergence(loss: f64, param_norms: &[f64]) -> Option<String> {
    if !loss.is_finite() {
        return Some(format!("loss became {loss}"));
    }
    param_norms
        .iter()
        .position(|g| !g.is_finite())
        .map(|i| format!("gradient of parameter #{i} became {}", param_norms[i]))
}

/// The per-boundary records of one pass; `sizes` are elements per example (C·H·W).
pub(crate) fn block_stats(stats: &PassStats, sizes: &[usize]) -> Vec<BlockStat> {
    let b = stats.batch.max(1) as f64;
    stats
        .blocks
        .iter()
        .enumerate()
        .map(|(i, (a, g))| BlockStat {
            grad_norm: *g as f32,
            grad_rms: sizes
                .get(i)
                .map_or(0.0, |&n| (g * (b / n as f64).sqrt()) as f32),
            act_mean: a.mean,
            act_std: a.std,
            act_zero_frac: a.zero_frac,
            dead_frac: a.dead_frac,
            split: stats.splits.get(i).copied().flatten().map(|s| Eq5 {
                shortcut: s.shortcut() as f32,
                branch: s.branch() as f32,
                cos: s.cosine() as f32,
            }),
            ..Default::default()
        })
        .collect()
}

#[cfg(test)]
#[path = "trainer_tests.rs"]
mod tests;
