//! The trainer's gradient histograms: per block, how the entries of its first conv weight's
//! gradient spread over magnitudes ([`histogram::counts`]), taken each step between the backward
//! pass and the optimizer step, the only time the gradients exist.

use crate::model::params::ParamStore;
use crate::records::histogram;
use dfdx::prelude::*;
use rayon::prelude::*;

/// One histogram per group of `groups` (from [`crate::records::learning::conv_weights`]) of its
/// first parameter's gradient; empty for a group without one. The gradient buffers are moved out
/// of `grads` and back, not copied; groups are binned in parallel.
pub fn per_block(
    store: &ParamStore<f32>,
    grads: &mut Gradients<f32, Cpu>,
    groups: &[Vec<usize>],
) -> Vec<Vec<u32>> {
    let gs = store.take_grads(grads);
    let out = groups
        .par_iter()
        .map(|g| {
            g.first()
                .and_then(|&p| gs.get(p))
                .map(|buf| histogram::counts(buf).to_vec())
                .unwrap_or_default()
        })
        .collect();
    store.put_grads(grads, gs);
    out
}
