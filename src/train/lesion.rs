//! The lesion experiment (Veit, Wilber, Belongie 2016, §4): each run's test accuracy intact and
//! with each single block deleted at test time, as plain data with the parameters that re-run it.

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

/// Lesion every run of `trainer` on the test images `params` names; `on_eval` is called after
/// each evaluation (for progress).
pub fn lesion_trainer(
    trainer: &mut Trainer,
    params: LesionParams,
    mut on_eval: impl FnMut(),
) -> LesionReport {
    let ranges = ranges(&trainer.ds, params.test_images, params.eval_batch);
    let models = trainer
        .runs
        .iter_mut()
        .map(|run| {
            let name = run.spec.to_string();
            lesion_net(&run.net, &name, &trainer.ds, &ranges, &mut on_eval)
        })
        .collect();
    LesionReport { models, params }
}

/// One network intact and with each block deleted, on the test-split `ranges`.
pub fn lesion_net(
    net: &Network<f32>,
    model: &str,
    ds: &Dataset,
    ranges: &[Range<usize>],
    on_eval: impl FnMut(),
) -> ModelLesion {
    lesion_net_until(net, model, ds, ranges, on_eval, &AtomicBool::new(false))
        .expect("never cancelled")
}

/// [`lesion_net`] that gives up (`None`) once `cancel` is set, checked before each evaluation.
pub fn lesion_net_until(
    net: &Network<f32>,
    model: &str,
    ds: &Dataset,
    ranges: &[Range<usize>],
    mut on_eval: impl FnMut(),
    cancel: &AtomicBool,
) -> Option<ModelLesion> {
    let live = || !cancel.load(Ordering::Relaxed);
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
    fn a_net_near_chance_is_flagged() {
        assert!(model(0.102).at_chance(10));
        assert!(model(0.149).at_chance(10));
        assert!(!model(0.16).at_chance(10));
        assert!(!model(0.736).at_chance(10));
        assert!(model(0.52).at_chance(2), "two classes: chance is 50 %");
    }
}
