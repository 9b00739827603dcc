//! The lesion experiment (Veit, Wilber, Belongie 2016, §4): each run's test accuracy intact and
//! with each single block deleted at test time, as plain data with the parameters that re-run it.
//!
//! Before measuring, a copy of each net has its batch-norm running statistics re-estimated on
//! training batches ([`PreciseBn`]): the stored ones lag the weights during training (an
//! exponential average over past weights), and where they do, deleting a block measures that
//! mismatch instead of the block (v2-56 after 100 steps: 47 % in evaluation mode against 89 % in
//! training, and deletions *raised* its accuracy). A drop is always intact − lesioned, in
//! accuracy: positive means the deletion hurt.

use super::experiment::{Passes, PreciseBn, precise_bn};
use super::trainer::Trainer;
use crate::config::ExperimentConfig;
use crate::data::{Dataset, test_batches};
use crate::engine;
use crate::model::Network;
use crate::model::network::argmax_rows;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a lesion study was run on: enough to run it again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionParams {
    /// The experiment the runs were built and trained with.
    pub experiment: ExperimentConfig,
    /// Optimizer steps each run had taken when it was lesioned, in run order.
    pub steps: Vec<u64>,
    /// The snapshot the weights came from, if they were not trained just before.
    pub from: Option<String>,
    /// Images of the test split evaluated (the first ones), and the evaluation batch size.
    pub test_images: usize,
    pub eval_batch: usize,
}

/// One run's accuracies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelLesion {
    pub model: String,
    /// Test accuracy of the intact network.
    pub accuracy: f64,
    /// Per block, in network order.
    pub blocks: Vec<BlockLesion>,
}

/// Test accuracy with one block deleted; `None` where the block cannot be deleted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockLesion {
    pub name: String,
    pub accuracy: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionReport {
    pub models: Vec<ModelLesion>,
    pub params: LesionParams,
}

impl ModelLesion {
    /// Intact accuracy minus lesioned accuracy, per deletable block: `(name, drop)`.
    pub fn drops(&self) -> Vec<(&str, f64)> {
        self.blocks
            .iter()
            .filter_map(|b| b.accuracy.map(|a| (b.name.as_str(), self.accuracy - a)))
            .collect()
    }

    /// Median of [`ModelLesion::drops`] (the mean of the middle two for an even count).
    pub fn median_drop(&self) -> Option<f64> {
        let mut d: Vec<f64> = self.drops().into_iter().map(|(_, d)| d).collect();
        d.sort_by(f64::total_cmp);
        let n = d.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(d[n / 2]),
            _ => Some((d[n / 2 - 1] + d[n / 2]) / 2.0),
        }
    }

    /// The block whose deletion hurts most, with its drop.
    pub fn max_drop(&self) -> Option<(&str, f64)> {
        self.drops().into_iter().max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Whether the intact net is within [`CHANCE_MARGIN`] of chance (1 / `classes`): it has
    /// learned nothing a deletion could remove, so its drops say nothing about its blocks: the
    /// usual case in the first few dozen steps.
    pub fn at_chance(&self, classes: usize) -> bool {
        self.accuracy < 1.0 / classes.max(1) as f64 + CHANCE_MARGIN
    }
}

/// How far above chance an intact net must be for its lesion study to mean something: about
/// four standard errors of a chance-level accuracy on the dashboard's 500 test images.
pub const CHANCE_MARGIN: f64 = 0.05;

/// Test-split ranges of `batch` images covering the first `images` (all if larger).
pub fn ranges(ds: &Dataset, images: usize, batch: usize) -> Vec<Range<usize>> {
    test_batches(ds, batch)
        .filter(|r| r.start < images)
        .map(|r| r.start..r.end.min(images))
        .collect()
}

/// Evaluations [`lesion_trainer`] makes: per run, intact plus one per block.
pub fn evaluations(trainer: &Trainer) -> u64 {
    trainer
        .runs
        .iter()
        .map(|r| r.net.num_blocks() as u64 + 1)
        .sum()
}

/// Batch-norm re-estimation before a lesion study: 8 training batches of the experiment's batch
/// size (as `resviz shatter`'s default), drawn by seed 0.
pub fn default_bn(batch: usize) -> PreciseBn {
    PreciseBn {
        batches: 8,
        batch: batch.max(1),
        seed: 0,
    }
}

/// A lesion study with what it was measured under: the batch-norm re-estimation and, per run,
/// its evaluation-mode accuracy against its training accuracy. What `resviz lesion --json`
/// prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LesionStudy {
    #[serde(flatten)]
    pub report: LesionReport,
    /// How the running statistics were re-estimated before measuring (`batches: 0`: the
    /// runs' own were used).
    pub bn: PreciseBn,
    /// Always "intact - lesioned": a positive drop means the deletion hurt.
    pub drop_convention: String,
    /// Per run, in run order.
    pub checks: Vec<AccuracyCheck>,
}

/// Evaluation-mode (intact, test) accuracy against the run's training accuracy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccuracyCheck {
    pub model: String,
    /// Mean training accuracy over the last 10 % of the run's recorded steps, if known.
    pub train_accuracy: Option<f64>,
    pub eval_accuracy: f64,
    /// Evaluation accuracy more than [`EVAL_GAP`] below training accuracy: the evaluation-mode
    /// net is not the trained one, and its drops are suspect.
    pub eval_below_train: bool,
}

/// How far (in accuracy) evaluation may fall below training before a run is flagged.
pub const EVAL_GAP: f64 = 0.10;

impl AccuracyCheck {
    pub fn new(model: &ModelLesion, train_accuracy: Option<f64>) -> Self {
        Self {
            model: model.model.clone(),
            train_accuracy,
            eval_accuracy: model.accuracy,
            eval_below_train: train_accuracy.is_some_and(|t| model.accuracy < t - EVAL_GAP),
        }
    }
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
    let ranges = ranges(&trainer.ds, params.test_images, params.eval_batch);
    let bn_batches = bn.gather(&trainer.ds);
    let models: Vec<ModelLesion> = trainer
        .runs
        .iter_mut()
        .map(|run| {
            let name = run.spec.to_string();
            lesion_net(
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

/// One network intact and with each block deleted, on the test-split `ranges`, after its
/// running statistics were re-estimated from `bn` (training batches; none: its own).
pub fn lesion_net(
    net: &Network<f32>,
    model: &str,
    ds: &Dataset,
    ranges: &[Range<usize>],
    bn: &[Vec<f32>],
    on_eval: impl FnMut(),
) -> ModelLesion {
    lesion_net_until(
        net,
        model,
        ds,
        (ranges, bn),
        on_eval,
        &AtomicBool::new(false),
    )
    .expect("never cancelled")
}

/// [`lesion_net`] that gives up (`None`) once `cancel` is set, checked before each pass.
pub fn lesion_net_until(
    net: &Network<f32>,
    model: &str,
    ds: &Dataset,
    (ranges, bn): (&[Range<usize>], &[Vec<f32>]),
    mut on_eval: impl FnMut(),
    cancel: &AtomicBool,
) -> Option<ModelLesion> {
    let live = || !cancel.load(Ordering::Relaxed);
    let mut copy;
    let net = match bn.is_empty() {
        true => net,
        false => {
            copy = net.clone();
            let mut quiet = |_, _| {};
            let mut passes = Passes::new(bn.len(), &mut quiet, cancel);
            // It fails only by being cancelled.
            precise_bn(&mut copy, bn, &mut passes).ok()?;
            &copy
        }
    };
    let intact = accuracy(net, ds, ranges, None).expect("an intact net evaluates");
    on_eval();
    let names = net.block_names()[1..].to_vec();
    let mut blocks = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        if !live() {
            return None;
        }
        let accuracy = accuracy(net, ds, ranges, Some(i));
        on_eval();
        blocks.push(BlockLesion { name, accuracy });
    }
    Some(ModelLesion {
        model: model.to_string(),
        accuracy: intact,
        blocks,
    })
}

/// Test accuracy over `ranges` with block `deleted` (or none) deleted; `None` if it cannot be.
/// On the forward-only path, folded once for all the ranges.
pub fn accuracy(
    net: &Network<f32>,
    ds: &Dataset,
    ranges: &[Range<usize>],
    deleted: Option<usize>,
) -> Option<f64> {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let (mut correct, mut n) = (0usize, 0usize);
    let inference = net.inference();
    for r in ranges {
        ds.gather_range(&ds.test, r.clone(), &mut x, &mut y);
        let logits = engine::on_pool(|| inference.logits_without(&x, y.len(), deleted))?;
        let predicted = argmax_rows(&logits, net.opts.classes);
        correct += predicted.iter().zip(&y).filter(|(p, t)| p == t).count();
        n += y.len();
    }
    Some(correct as f64 / n.max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(accuracy: f64) -> ModelLesion {
        ModelLesion {
            model: "v1-20".into(),
            accuracy,
            blocks: vec![BlockLesion {
                name: "stages.0.1".into(),
                accuracy: Some(0.1),
            }],
        }
    }

    #[test]
    fn evaluation_far_below_training_is_flagged() {
        let m = model(0.47);
        assert!(AccuracyCheck::new(&m, Some(0.89)).eval_below_train);
        assert!(
            !AccuracyCheck::new(&m, Some(0.57)).eval_below_train,
            "exactly 10 points"
        );
        assert!(!AccuracyCheck::new(&m, Some(0.50)).eval_below_train);
        assert!(!AccuracyCheck::new(&m, Some(0.30)).eval_below_train);
        assert!(
            !AccuracyCheck::new(&m, None).eval_below_train,
            "unknown: no flag"
        );
    }

    #[test]
    fn a_net_near_chance_is_flagged() {
        assert!(model(0.102).at_chance(10));
        assert!(model(0.149).at_chance(10));
        assert!(!model(0.16).at_chance(10));
        assert!(!model(0.736).at_chance(10));
        assert!(model(0.52).at_chance(2), "two classes: chance is 50 %");
    }
}
