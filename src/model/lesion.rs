//! Lesion study (Veit, Wilber, Belongie 2016, §4): a network evaluated with one block deleted
//! at test time, batch norm in evaluation mode, on the forward-only path.

use super::network::Network;
use crate::engine::Float;
use dfdx::prelude::*;

impl<E: Float> Network<E>
where
    Cpu: Device<E>,
{
    /// Number of blocks (boundaries minus the stem); block `i` produces boundary `i + 1` of
    /// [`Network::block_names`].
    pub fn num_blocks(&self) -> usize {
        self.block_names().len() - 1
    }

    /// [`Network::eval_pass`] with block `deleted` replaced by its shortcut path: `(mean loss,
    /// correct)` over the batch, or `None` if the block cannot be deleted (a plain block that
    /// changes its input's shape).
    pub fn eval_pass_without(
        &self,
        x: Vec<E>,
        y: &[usize],
        deleted: usize,
    ) -> Option<(f64, usize)> {
        assert!(deleted < self.num_blocks(), "no block {deleted}");
        let logits = self.infer_lesioned(&x, y.len(), deleted)?;
        Some(self.loss_and_correct(&logits, y))
    }
}
