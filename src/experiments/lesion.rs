//! The lesion experiment (Veit, Wilber, Belongie 2016, §4): each run's test accuracy intact and
//! with each single block deleted at test time, as plain data with the parameters that re-run it.
//!
//! Before measuring, a copy of each net has its batch-norm running statistics re-estimated on
//! training batches ([`PreciseBn`]): the stored ones lag the weights during training (an
//! exponential average over past weights), and where they do, deleting a block measures that
//! mismatch instead of the block (v2-56 after 100 steps: 47 % in evaluation mode against 89 % in
//! training, and deletions *raised* its accuracy). A drop is always intact − lesioned, in
//! accuracy: positive means the deletion hurt.

use super::{Passes, precise_bn};
use crate::data::{Dataset, test_batches};
use crate::engine;
use crate::model::Network;
use crate::model::network::argmax_rows;
use crate::records::{BlockLesion, ModelLesion};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// Test-split ranges of `batch` images covering the first `images` (all if larger).
pub fn ranges(ds: &Dataset, images: usize, batch: usize) -> Vec<Range<usize>> {
    test_batches(ds, batch)
        .filter(|r| r.start < images)
        .map(|r| r.start..r.end.min(images))
        .collect()
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
