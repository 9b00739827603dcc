//! The lesion experiment (Veit, Wilber, Belongie 2016, §4): each run's test accuracy intact and
//! with each single block deleted at test time, as plain data with the parameters that re-run it.
//!
//! Before measuring, a copy of each net has its batch-norm running statistics re-estimated on
//! training batches ([`PreciseBn`]): the stored ones lag the weights during training (an
//! exponential average over past weights), and where they do, deleting a block measures that
//! mismatch instead of the block (v2-56 after 100 steps: 47 % in evaluation mode against 89 % in
//! training, and deletions *raised* its accuracy). A drop is always intact − lesioned, in
//! accuracy: positive means the deletion hurt.

use super::{Experiment, ExperimentError, Passes, Progress, precise_bn, require};
use crate::data::{Dataset, test_batches};
use crate::engine;
use crate::model::Network;
use crate::model::network::argmax_rows;
use crate::records::{BlockLesion, ModelLesion, PreciseBn};
use std::ops::Range;
use std::sync::atomic::AtomicBool;

/// Test-split ranges of `batch` images covering the first `images` (all if larger).
pub fn ranges(ds: &Dataset, images: usize, batch: usize) -> Vec<Range<usize>> {
    test_batches(ds, batch)
        .filter(|r| r.start < images)
        .map(|r| r.start..r.end.min(images))
        .collect()
}

/// The lesion study prepared on a dataset: the test ranges evaluated and the training batches
/// that re-estimate the running statistics.
pub struct Lesion<'a> {
    pub ds: &'a Dataset,
    pub ranges: Vec<Range<usize>>,
    pub bn: Vec<Vec<f32>>,
}

impl<'a> Lesion<'a> {
    /// The first `test_images` test images in batches of `eval_batch`, the statistics
    /// re-estimated by `bn` (`batches: 0`: each net's own).
    pub fn new(
        ds: &'a Dataset,
        test_images: usize,
        eval_batch: usize,
        bn: &PreciseBn,
    ) -> Result<Self, ExperimentError> {
        require(test_images >= 1, || "test images must be at least 1".into())?;
        require(eval_batch >= 1, || {
            "the eval batch must be at least 1".into()
        })?;
        Ok(Self {
            ds,
            ranges: ranges(ds, test_images, eval_batch),
            bn: bn.gather(ds),
        })
    }
}

impl Experiment for Lesion<'_> {
    type Output = ModelLesion;
    const UNIT: &'static str = "evaluations";

    /// Intact, then one per block.
    fn units(&self, net: &Network<f32>) -> usize {
        net.num_blocks() + 1
    }

    fn measure(
        &self,
        net: &Network<f32>,
        model: &str,
        progress: Progress,
        cancel: &AtomicBool,
    ) -> Result<ModelLesion, ExperimentError> {
        lesion_net(
            net,
            model,
            self.ds,
            (&self.ranges, &self.bn),
            progress,
            cancel,
        )
    }
}

/// One network intact and with each block deleted, on the test-split `ranges`, after its
/// running statistics were re-estimated from `bn` (training batches; none: its own). Progress
/// counts evaluations (intact, then one per block); the re-estimation passes are not counted.
pub fn lesion_net(
    net: &Network<f32>,
    model: &str,
    ds: &Dataset,
    (ranges, bn): (&[Range<usize>], &[Vec<f32>]),
    progress: Progress,
    cancel: &AtomicBool,
) -> Result<ModelLesion, ExperimentError> {
    let mut copy;
    let net = match bn.is_empty() {
        true => net,
        false => {
            copy = net.clone();
            let mut quiet = |_, _| {};
            let mut passes = Passes::new(bn.len(), &mut quiet, cancel);
            precise_bn(&mut copy, bn, &mut passes)?;
            &copy
        }
    };
    let names = net.block_names()[1..].to_vec();
    let mut passes = Passes::new(names.len() + 1, progress, cancel);
    passes.check()?;
    let intact = accuracy(net, ds, ranges, None).expect("an intact net evaluates");
    passes.tick();
    let mut blocks = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        passes.check()?;
        let accuracy = accuracy(net, ds, ranges, Some(i));
        passes.tick();
        blocks.push(BlockLesion { name, accuracy });
    }
    Ok(ModelLesion {
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
